"""`AppStore`: the application database behind the web app and the API (settings overrides, the decision
log, annotations, pushed values and push idempotency, sources' encrypted credentials).

SQLite in the workspace's state folder by default, PostgreSQL (or any SQLAlchemy URL) when given one. Opening
a store brings its schema to the latest Alembic migration, so an upgraded kpilot needs no manual step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kpilot.model import KpilotError
from kpilot.model.errors import N_, msg
from kpilot.model.periods import period_range
from kpilot.store.accounts import Accounts, record_change
from kpilot.store.alert_log import AlertLog, json_safe
from kpilot.store.models import (
    AnnotationRow,
    CredentialRow,
    DecisionRow,
    OverrideRow,
    PushedRowRow,
    PushedValueRow,
    PushRequestRow,
)

DECISION_STATUSES = ("open", "done", "declined")
#: The longest texts the store keeps (the columns' sizes; the API's bodies have the same limits).
NAME_MAX, TEXT_MAX = 200, 5000
MIGRATIONS = Path(__file__).parent / "migrations"


class StoreConflict(KpilotError):
    """A request that contradicts what the store already holds (HTTP 409)."""

    status = 409


class StoreNotFound(KpilotError):
    """A record that does not exist (HTTP 404)."""

    status = 404


class StoreInvalid(KpilotError):
    """A value the store refuses (HTTP 422)."""

    status = 422


def _iso(value: datetime) -> str:
    return _aware(value).isoformat()


def _aware(value: datetime) -> datetime:
    """SQLite keeps no time zone: every time is written in UTC, so a naive one read back is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DecisionRecord:
    """A decision taken (or declined) about a KPI for a period; `status` is 'open', 'done' or 'declined'."""

    id: int
    workspace: str
    metric: str
    period: str
    action: str
    owner: str | None
    status: str
    note: str | None
    created_at: datetime
    updated_at: datetime
    user: str | None
    expected_effect: str | None = None  # in the decider's words: "+15 % demos within 3 weeks"
    expected_change: float | None = None  # the same as a share: 0.15
    review_on: str | None = None  # ISO date the effect is measured
    alert_id: int | None = None  # the alert it answers
    baseline: dict[str, Any] | None = None  # the forecast made before the decision (the counterfactual)
    effect: dict[str, Any] | None = None  # measured at the review

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["created_at"] = _iso(self.created_at)
        out["updated_at"] = _iso(self.updated_at)
        return out

    @classmethod
    def of(cls, row: DecisionRow) -> DecisionRecord:
        return cls(row.id, row.workspace, row.metric, row.period, row.action, row.owner, row.status, row.note,
                   _aware(row.created_at), _aware(row.updated_at), row.user, row.expected_effect,
                   row.expected_change, row.review_on, row.alert_id, row.baseline, row.effect)


@dataclass(frozen=True)
class AnnotationRecord:
    """A note on a metric's history at a period."""

    id: int
    workspace: str
    metric: str
    period: str
    text: str
    created_at: datetime
    user: str | None

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["created_at"] = _iso(self.created_at)
        return out

    @classmethod
    def of(cls, row: AnnotationRow) -> AnnotationRecord:
        return cls(row.id, row.workspace, row.metric, row.period, row.text, _aware(row.created_at), row.user)


@dataclass(frozen=True)
class PushedValue:
    """A metric value another system sent for a period (the latest sent wins)."""

    metric: str
    period: str
    value: float
    pushed_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "period": self.period, "value": self.value, "pushed_at": _iso(self.pushed_at)}


DATABASE_ENV = "KPILOT_DATABASE_URL"  # the application database's URL (default: app.db in the state folder)


def open_store(state_dir: Path, url: str | None = None, environ: Mapping[str, str] | None = None) -> AppStore:
    """The one way kpilot opens the application database: `url` (`--db`), else $KPILOT_DATABASE_URL, else SQLite
    in the workspace's state folder (created on first use, private to its owner)."""
    env = os.environ if environ is None else environ
    return AppStore(url or env.get(DATABASE_ENV) or None, state_dir=state_dir)


def store_exists(state_dir: Path, url: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether there is an application database to read from (a URL is given, or app.db is in the state folder):
    reading settings or credentials never creates one."""
    env = os.environ if environ is None else environ
    return bool(url or env.get(DATABASE_ENV)) or (Path(state_dir) / "app.db").exists()


def database_url(url: str | None, state_dir: Path) -> str:
    """The SQLAlchemy URL of the app database: SQLite in `state_dir` by default; a `postgresql://` URL uses
    psycopg 3 (the driver kpilot installs for PostgreSQL)."""
    if not url:
        return f"sqlite:///{Path(state_dir) / 'app.db'}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def private_file(path: Path) -> None:
    """Make `path` a file only its owner may read (0600), in a folder only its owner may enter (0700, when kpilot
    creates it); SQLite gives its journal files the database file's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
    except OSError:
        pass  # a read-only state folder: opening the database says why, with the fix


def _engine(url: str) -> Engine:
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise KpilotError(msg("cannot use the application database URL '{url}': {reason}. Fix: give a URL such as "
                              "sqlite:///path/app.db or postgresql://user@host:5432/db with --db or "
                              "KPILOT_DATABASE_URL.", url=_safe(url), reason=str(exc))) from exc
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_con: Any, _: Any) -> None:
            # Wait for a concurrent writer instead of failing at once; let a reader go on while one writes.
            dbapi_con.execute("PRAGMA busy_timeout = 10000")
            dbapi_con.execute("PRAGMA journal_mode = WAL")
            dbapi_con.execute("PRAGMA foreign_keys = ON")
    return engine


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("://")
    if sep and "@" in tail:
        creds, _, host = tail.rpartition("@")
        return f"{head}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


def upgrade(engine: Engine) -> None:
    """Bring the database's schema to the latest migration (a no-op when it is there already)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as con:
        cfg.attributes["connection"] = con
        command.upgrade(cfg, "head")


class AppStore(AlertLog, Accounts):
    """The application database of a kpilot server (thread-safe: one short session per call)."""

    def __init__(self, url: str | None = None, *, state_dir: Path):
        if not url:
            private_file(Path(state_dir) / "app.db")
        self.url = database_url(url, Path(state_dir))
        self.engine = _engine(self.url)
        try:
            upgrade(self.engine)
        except OperationalError as exc:
            self.engine.dispose()
            raise KpilotError(msg("cannot open the application database {url}: {reason}. Fix: check that the "
                                  "server runs and the URL is right (--db or KPILOT_DATABASE_URL).",
                                  url=_safe(self.url), reason=str(exc.orig))) from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> AppStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- settings overrides ------------------------------------------------------------------------

    def overrides(self, workspace: str) -> dict[str, dict[str, object]]:
        """Metric key -> {field: value} of every override of the workspace."""
        out: dict[str, dict[str, object]] = {}
        with self._session() as s:
            for row in s.scalars(select(OverrideRow).where(OverrideRow.workspace == workspace)
                                 .order_by(OverrideRow.metric, OverrideRow.field)):
                out.setdefault(row.metric, {})[row.field] = row.value
        return out

    def set_override(self, workspace: str, metric: str, field: str, value: object, *,
                     user: str | None = None) -> None:
        """Replace `field` of `metric` by `value` (JSON-able data); the caller has validated it."""
        with self._session() as s:
            row = s.scalars(select(OverrideRow).where(OverrideRow.workspace == workspace, OverrideRow.metric == metric,
                                                      OverrideRow.field == field)).one_or_none()
            before = None if row is None else row.value
            if row is None:
                s.add(OverrideRow(workspace=workspace, metric=metric, field=field, value=value, updated_at=_now(),
                                  user=user))
            else:
                row.value = value
                row.updated_at = _now()
                row.user = user
            if before != value:
                record_change(s, workspace, user, "setting", f"{metric}.{field}", before, value)

    def clear_override(self, workspace: str, metric: str, field: str, *, user: str | None = None) -> None:
        """Go back to kpilot.yaml's value of `field` (nothing happens when it was not overridden)."""
        with self._session() as s:
            row = s.scalars(select(OverrideRow).where(OverrideRow.workspace == workspace, OverrideRow.metric == metric,
                                                      OverrideRow.field == field)).one_or_none()
            if row is not None:
                record_change(s, workspace, user, "setting", f"{metric}.{field}", row.value, None)
                s.delete(row)

    # --- decision log ------------------------------------------------------------------------------

    def decisions(self, workspace: str, metric: str | None = None) -> list[DecisionRecord]:
        """The decision log, newest first."""
        query = select(DecisionRow).where(DecisionRow.workspace == workspace)
        if metric is not None:
            query = query.where(DecisionRow.metric == metric)
        with self._session() as s:
            return [DecisionRecord.of(r) for r in s.scalars(query.order_by(DecisionRow.id.desc()))]

    def decision(self, workspace: str, decision_id: int) -> DecisionRecord | None:
        """One decision of the workspace's log; None when it has no such decision."""
        if not 0 < decision_id < 2**63:  # beyond any id a database gives (and SQLite's integers)
            return None
        with self._session() as s:
            row = s.get(DecisionRow, decision_id)
            return DecisionRecord.of(row) if row is not None and row.workspace == workspace else None

    def add_decision(self, workspace: str, metric: str, *, period: str, action: str, owner: str | None,
                     status: str = "open", note: str | None = None, user: str | None = None,
                     expected_effect: str | None = None, expected_change: float | None = None,
                     review_on: str | None = None, alert_id: int | None = None,
                     baseline: dict[str, Any] | None = None, actor: str | None = None) -> DecisionRecord:
        _check_status(status)
        if not action.strip():
            raise StoreInvalid(msg("a decision needs an action. Fix: say what was decided."))
        period = _check_period(period)
        _check_texts("decision", {"metric": (metric, NAME_MAX), "action": (action, TEXT_MAX),
                                  "owner": (owner, NAME_MAX), "note": (note, TEXT_MAX),
                                  "expected_effect": (expected_effect, TEXT_MAX)})
        if review_on is not None:
            review_on = _check_date(review_on)
        now = _now()
        row = DecisionRow(workspace=workspace, metric=metric, period=period, action=action, owner=owner,
                          status=status, note=note, created_at=now, updated_at=now, user=user,
                          expected_effect=expected_effect, expected_change=expected_change, review_on=review_on,
                          alert_id=alert_id, baseline=json_safe(baseline))
        with self._session() as s:
            s.add(row)
            s.flush()
            record = DecisionRecord.of(row)
            record_change(s, workspace, actor or user, "decision", f"{metric} #{row.id}", None,
                          {"period": period, "action": action, "owner": owner, "status": status, "note": note,
                           "expected_effect": expected_effect, "review_on": review_on})
            return record

    def update_decision(self, workspace: str, decision_id: int, *, status: str,
                        note: str | None = None, user: str | None = None) -> DecisionRecord:
        """Change a decision's status (and its note, when given); `user` is who changed it (the audit log)."""
        _check_status(status)
        _check_texts("decision", {"note": (note, TEXT_MAX)})
        with self._session() as s:
            row = _decision_row(s, workspace, decision_id)
            record_change(s, workspace, user, "decision", f"{row.metric} #{row.id}",
                          {"status": row.status, "note": row.note},
                          {"status": status, "note": row.note if note is None else note})
            row.status = status
            if note is not None:
                row.note = note
            row.updated_at = _now()
            s.flush()
            return DecisionRecord.of(row)

    def record_effect(self, workspace: str, decision_id: int, effect: dict[str, Any]) -> DecisionRecord:
        """Keep the effect measured at a decision's review."""
        with self._session() as s:
            row = _decision_row(s, workspace, decision_id)
            row.effect = json_safe(effect)
            row.updated_at = _now()
            s.flush()
            return DecisionRecord.of(row)

    # --- annotations -------------------------------------------------------------------------------

    def annotations(self, workspace: str, metric: str | None = None) -> list[AnnotationRecord]:
        """Notes on metrics' history, in period order."""
        query = select(AnnotationRow).where(AnnotationRow.workspace == workspace)
        if metric is not None:
            query = query.where(AnnotationRow.metric == metric)
        with self._session() as s:
            return [AnnotationRecord.of(r) for r in s.scalars(query.order_by(AnnotationRow.period,
                                                                             AnnotationRow.id))]

    def add_annotation(self, workspace: str, metric: str, *, period: str, text: str,
                       user: str | None = None) -> AnnotationRecord:
        if not text.strip():
            raise StoreInvalid(msg("an annotation needs a text. Fix: write what happened."))
        period = _check_period(period)
        _check_texts("annotation", {"metric": (metric, NAME_MAX), "text": (text, TEXT_MAX)})
        row = AnnotationRow(workspace=workspace, metric=metric, period=period, text=text, created_at=_now(),
                            user=user)
        with self._session() as s:
            s.add(row)
            s.flush()
            record_change(s, workspace, user, "annotation", f"{metric} #{row.id}", None,
                          {"period": period, "text": text})
            return AnnotationRecord.of(row)

    # --- pushes ------------------------------------------------------------------------------------

    def seen_push(self, workspace: str, key: str, fingerprint: str) -> dict[str, object] | None:
        """The response given to an earlier push with this idempotency key and the same body; None when the key
        is new. Raises StoreConflict (409) when the key came with another body."""
        with self._session() as s:
            row = s.scalars(select(PushRequestRow).where(PushRequestRow.workspace == workspace,
                                                         PushRequestRow.key == key)).one_or_none()
            if row is None:
                return None
            if row.fingerprint != fingerprint:
                raise _reused(key)
            return dict(row.response)

    def remember_push(self, workspace: str, key: str, fingerprint: str,
                      response: dict[str, object]) -> dict[str, object] | None:
        """Remember the response to a push: None when the key is new (it is stored), the stored response when
        the key was seen with the same fingerprint; StoreConflict (409) when seen with another."""
        return self.record_push(workspace, key=key, fingerprint=fingerprint, response=response)

    def record_push(self, workspace: str, *, key: str | None, fingerprint: str, response: dict[str, object],
                    values: Sequence[tuple[str, str, float]] = (),
                    rows: Sequence[tuple[str, dict[str, object]]] = ()) -> dict[str, object] | None:
        """Store pushed values ((metric, period, value)) and rows ((table, row)) with the push's idempotency key,
        in one transaction: None when done; when another request with the same key got there first, nothing
        is stored and its response is returned (same body) or StoreConflict raised (another body)."""
        now = _now()
        try:
            with self._session() as s:
                push_id = None
                if key is not None:
                    request = PushRequestRow(workspace=workspace, key=key, fingerprint=fingerprint,
                                             response=response, created_at=now)
                    s.add(request)
                    s.flush()
                    push_id = request.id
                s.add_all(PushedValueRow(workspace=workspace, metric=m, period=p, value=v, push_id=push_id,
                                         pushed_at=now) for m, p, v in values)
                s.add_all(PushedRowRow(workspace=workspace, table_name=t, row=r, push_id=push_id, pushed_at=now)
                          for t, r in rows)
        except IntegrityError:
            if key is None:
                raise
            found = self.seen_push(workspace, key, fingerprint)
            if found is None:  # the unique key is the only constraint a push can break
                raise
            return found
        return None

    def pushed_values(self, workspace: str, metric: str | None = None) -> list[PushedValue]:
        """The latest value pushed per metric and period, in (metric, period) order."""
        query = select(PushedValueRow).where(PushedValueRow.workspace == workspace)
        if metric is not None:
            query = query.where(PushedValueRow.metric == metric)
        latest: dict[tuple[str, str], PushedValue] = {}
        with self._session() as s:
            for r in s.scalars(query.order_by(PushedValueRow.id)):
                latest[(r.metric, r.period)] = PushedValue(r.metric, r.period, r.value, _aware(r.pushed_at))
        return [latest[k] for k in sorted(latest)]

    def pushed_rows(self, workspace: str, table: str) -> list[dict[str, object]]:
        """Every row pushed to `table`, in the order received."""
        return [row for _, row in self.pushed_rows_after(workspace, table, 0)]

    def pushed_rows_after(self, workspace: str, table: str, after: int) -> list[tuple[int, dict[str, object]]]:
        """(id, row) of the rows pushed to `table` after the row whose id is `after`, in the order received."""
        with self._session() as s:
            found = s.execute(select(PushedRowRow.id, PushedRowRow.row).where(
                PushedRowRow.workspace == workspace, PushedRowRow.table_name == table, PushedRowRow.id > after
            ).order_by(PushedRowRow.id))
            return [(int(i), dict(r)) for i, r in found]

    # --- credentials (encrypted by kpilot.store.credentials: this layer only sees ciphertext) --------

    def set_credential(self, workspace: str, source: str, name: str, ciphertext: str, *,
                       user: str | None = None) -> None:
        with self._session() as s:
            row = _credential_row(s, workspace, source, name)
            # The audit log says that a credential changed, never its value (not even encrypted).
            record_change(s, workspace, user, "credential", f"{source}.{name}", None if row is None else "set", "set")
            if row is None:
                s.add(CredentialRow(workspace=workspace, source=source, name=name, value=ciphertext,
                                    updated_at=_now(), user=user))
            else:
                row.value = ciphertext
                row.updated_at = _now()
                row.user = user

    def credential(self, workspace: str, source: str, name: str) -> str | None:
        """The stored ciphertext of a source's credential; None when there is none."""
        with self._session() as s:
            return s.scalars(select(CredentialRow.value).where(
                CredentialRow.workspace == workspace, CredentialRow.source == source,
                CredentialRow.name == name)).one_or_none()

    def credential_names(self, workspace: str) -> list[tuple[str, str, datetime]]:
        """(source, name, updated_at) of every stored credential, in (source, name) order; never a value."""
        with self._session() as s:
            return [(r.source, r.name, _aware(r.updated_at)) for r in s.execute(
                select(CredentialRow.source, CredentialRow.name, CredentialRow.updated_at)
                .where(CredentialRow.workspace == workspace).order_by(CredentialRow.source, CredentialRow.name))]

    def delete_credential(self, workspace: str, source: str, name: str, *, user: str | None = None) -> bool:
        """Remove a credential; False when there was none."""
        with self._session() as s:
            row = _credential_row(s, workspace, source, name)
            if row is None:
                return False
            record_change(s, workspace, user, "credential", f"{source}.{name}", "set", None)
            s.delete(row)
            return True


def _credential_row(s: Session, workspace: str, source: str, name: str) -> CredentialRow | None:
    return s.scalars(select(CredentialRow).where(CredentialRow.workspace == workspace, CredentialRow.source == source,
                                                 CredentialRow.name == name)).one_or_none()


def _decision_row(s: Session, workspace: str, decision_id: int) -> DecisionRow:
    """The workspace's decision `decision_id` (StoreNotFound otherwise: another workspace's is not reachable)."""
    row = s.get(DecisionRow, decision_id)
    if row is None or row.workspace != workspace:
        raise StoreNotFound(msg("no decision {id} in workspace '{workspace}'. Fix: list the decisions to find its id.",
                                id=decision_id, workspace=workspace))
    return row


def _check_status(status: str) -> None:
    if status not in DECISION_STATUSES:
        raise StoreInvalid(msg("'{status}' is not a decision status. Fix: use open, done or declined.",
                               status=status))


def _check_date(text: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise StoreInvalid(msg("'{text}' is not a date. Fix: write it as YYYY-MM-DD, e.g. 2026-12-14.",
                               text=text)) from None


def _check_period(period: str) -> str:
    """The period trimmed, or StoreInvalid when it is not a period (it could not be placed on a history)."""
    try:
        period_range(period)
    except ValueError as exc:
        raise StoreInvalid(exc.args[0] if exc.args else str(exc)) from None
    return period.strip()


_TEXT_FAULTS = {  # (a NUL, too long), by record: whole templates, so that each translates well
    "decision": (N_("the decision's {field} holds a NUL character. Fix: remove it."),
                 N_("the decision's {field} is longer than {n} characters. Fix: shorten it.")),
    "annotation": (N_("the annotation's {field} holds a NUL character. Fix: remove it."),
                   N_("the annotation's {field} is longer than {n} characters. Fix: shorten it.")),
}


def _check_texts(record: str, texts: dict[str, tuple[str | None, int]]) -> None:
    """StoreInvalid for a text a database would refuse (a NUL, in PostgreSQL) or cut (longer than its column)."""
    nul, long = _TEXT_FAULTS[record]
    for field, (value, longest) in texts.items():
        if value is None:
            continue
        if "\x00" in value:
            raise StoreInvalid(msg(nul, field=field))
        if len(value) > longest:
            raise StoreInvalid(msg(long, field=field, n=longest))


def _reused(key: str) -> StoreConflict:
    return StoreConflict(msg("the idempotency key '{key}' was already used with another body. Fix: send the same "
                             "body again, or use a new key for a new push.", key=key))
