"""Users, signed-in browsers, API tokens and the audit log of changes, in the application database.

The store keeps hashes only: a password's argon2 hash (made by `kpilot.service.accounts`), and the SHA-256 of a
session id or an API token (both random, 256 bits: a fast hash is enough, and lets a request find its row).
Every row belongs to one workspace, and every lookup names it: a token or a session of one workspace is unknown
to another, even when they share a database.

`record_change` writes an entry of the audit log in the caller's transaction, so a change and its entry are
kept together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kpilot.model import KpilotError
from kpilot.model.errors import msg
from kpilot.store.models import ApiTokenRow, ChangeRow, SignInFailureRow, SsoFlowRow, UserRow, WebSessionRow

ROLES = ("viewer", "editor", "admin")


class AccountError(KpilotError):
    """A user or token that cannot be created or changed as asked (exists already, unknown, the last admin)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _aware(value).isoformat(timespec="seconds")  # type: ignore[union-attr]


@dataclass(frozen=True)
class UserRecord:
    """A user of a workspace (never with their password hash: `AppStore.password_hash` reads it)."""

    id: int
    workspace: str
    email: str
    name: str | None
    role: str
    teams: tuple[str, ...]
    created_at: datetime
    disabled: bool
    last_login_at: datetime | None
    has_password: bool

    @classmethod
    def of(cls, row: UserRow) -> UserRecord:
        return cls(row.id, row.workspace, row.email, row.name, row.role, tuple(row.teams or ()),
                   _aware(row.created_at) or _now(), row.disabled_at is not None, _aware(row.last_login_at),
                   bool(row.password_hash))

    def to_dict(self) -> dict[str, object]:
        return {"email": self.email, "name": self.name, "role": self.role, "teams": list(self.teams),
                "created_at": _iso(self.created_at), "disabled": self.disabled,
                "last_login_at": _iso(self.last_login_at), "password": self.has_password}


@dataclass(frozen=True)
class TokenRecord:
    """An API token as listed: never the token itself, which only its creator saw once."""

    id: int
    workspace: str
    name: str
    prefix: str
    role: str
    teams: tuple[str, ...]
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, row: ApiTokenRow) -> TokenRecord:
        return cls(row.id, row.workspace, row.name, row.prefix, row.role, tuple(row.teams or ()),
                   _aware(row.created_at) or _now(), row.created_by, _aware(row.last_used_at),
                   row.revoked_at is not None)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "role": self.role, "teams": list(self.teams),
                "created_at": _iso(self.created_at), "created_by": self.created_by,
                "last_used_at": _iso(self.last_used_at), "revoked": self.revoked}


@dataclass(frozen=True)
class ChangeRecord:
    """One entry of the audit log."""

    id: int
    at: datetime
    actor: str | None
    kind: str
    subject: str
    before: Any
    after: Any

    @classmethod
    def of(cls, row: ChangeRow) -> ChangeRecord:
        return cls(row.id, _aware(row.at) or _now(), row.actor, row.kind, row.subject, row.before, row.after)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "at": _iso(self.at), "actor": self.actor, "kind": self.kind, "subject": self.subject,
                "before": self.before, "after": self.after}


def record_change(s: Session, workspace: str, actor: str | None, kind: str, subject: str, before: Any = None,
                  after: Any = None) -> None:
    """Add an audit log entry in session `s` (the transaction of the change itself)."""
    s.add(ChangeRow(workspace=workspace, at=_now(), actor=actor, kind=kind, subject=subject[:300], before=before,
                    after=after))


class _Sessions(Protocol):
    def _session(self) -> AbstractContextManager[Session]: ...


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(msg("unknown role '{role}'. Fix: use one of {roles}.", role=role, roles=", ".join(ROLES)))
    return role


def _user_row(s: Session, workspace: str, email: str) -> UserRow:
    row = s.scalars(select(UserRow).where(UserRow.workspace == workspace,
                                          func.lower(UserRow.email) == email.strip().lower())).one_or_none()
    if row is None:
        raise AccountError(msg("there is no user {email} in this workspace. Fix: check the address, or list the users "
                               "with `kpilot user list`.", email=email))
    return row


def _admins_left(s: Session, workspace: str, without: int) -> int:
    return len(s.scalars(select(UserRow.id).where(UserRow.workspace == workspace, UserRow.role == "admin",
                                                  UserRow.disabled_at.is_(None), UserRow.id != without)).all())


def _user_view(row: UserRow) -> dict[str, object]:
    """What the audit log keeps of a user: never the password's hash, only whether there is one."""
    return {"email": row.email, "name": row.name, "role": row.role, "teams": list(row.teams or ()),
            "disabled": row.disabled_at is not None, "password": bool(row.password_hash)}


def _keep_newest(s: Session, row: type[SignInFailureRow] | type[SsoFlowRow], workspace: str, keep: int) -> None:
    """Delete the workspace's rows of `row`'s table beyond its newest `keep` (by id)."""
    cutoff = s.scalars(select(row.id).where(row.workspace == workspace).order_by(row.id.desc())
                       .offset(keep).limit(1)).first()
    if cutoff is not None:
        s.execute(delete(row).where(row.workspace == workspace, row.id <= cutoff))


class Accounts:
    """The users, sessions, tokens and audit log part of `AppStore` (mixed in)."""

    # --- users -------------------------------------------------------------------------------------

    def has_users(self: _Sessions, workspace: str) -> bool:
        """Whether anyone may sign in to the workspace: from then on every page and API route asks who is there."""
        with self._session() as s:
            return s.scalars(select(UserRow.id).where(UserRow.workspace == workspace).limit(1)).first() is not None

    def users(self: _Sessions, workspace: str) -> list[UserRecord]:
        with self._session() as s:
            return [UserRecord.of(r) for r in s.scalars(select(UserRow).where(UserRow.workspace == workspace)
                                                         .order_by(UserRow.email))]

    def user(self: _Sessions, workspace: str, email: str) -> UserRecord | None:
        with self._session() as s:
            row = s.scalars(select(UserRow).where(UserRow.workspace == workspace,
                                                  func.lower(UserRow.email) == email.strip().lower())).one_or_none()
            return None if row is None else UserRecord.of(row)

    def password_hash(self: _Sessions, workspace: str, email: str) -> tuple[UserRecord, str | None] | None:
        """A user and their password's hash, for signing in (None: no such user)."""
        with self._session() as s:
            row = s.scalars(select(UserRow).where(UserRow.workspace == workspace,
                                                  func.lower(UserRow.email) == email.strip().lower())).one_or_none()
            return None if row is None else (UserRecord.of(row), row.password_hash)

    def add_user(self: _Sessions, workspace: str, email: str, *, role: str, teams: Sequence[str] = (),
                 password_hash: str | None = None, name: str | None = None, by: str | None = None) -> UserRecord:
        _check_role(role)
        email = email.strip()
        with self._session() as s:
            exists = s.scalars(select(UserRow.id).where(UserRow.workspace == workspace,
                                                        func.lower(UserRow.email) == email.lower())).first()
            if exists is not None:
                raise AccountError(msg("user {email} exists already. Fix: change their role with `kpilot user set`, or "
                                       "their password with `kpilot user password`.", email=email))
            row = UserRow(workspace=workspace, email=email, name=name, password_hash=password_hash, role=role,
                          teams=list(teams), created_at=_now())
            s.add(row)
            s.flush()
            record_change(s, workspace, by, "user", email, None, _user_view(row))
            return UserRecord.of(row)

    def update_user(self: _Sessions, workspace: str, email: str, *, role: str | None = None,
                    teams: Sequence[str] | None = None, password_hash: str | None = None,
                    disabled: bool | None = None, by: str | None = None) -> UserRecord:
        """Change a user's role, teams, password or access; the last active admin cannot lose it. A new password or
        a disabled account ends the user's sessions."""
        with self._session() as s:
            row = _user_row(s, workspace, email)
            before = _user_view(row)
            losing_admin = row.role == "admin" and ((role is not None and role != "admin") or disabled)
            if losing_admin and _admins_left(s, workspace, row.id) == 0:
                raise AccountError(msg("{email} is the last admin of this workspace. Fix: make someone else admin "
                                       "first.", email=row.email))
            if role is not None:
                row.role = _check_role(role)
            if teams is not None:
                row.teams = list(teams)
            if password_hash is not None:
                row.password_hash = password_hash
            if disabled is not None:
                row.disabled_at = _now() if disabled else None
            if password_hash is not None or disabled:
                s.execute(delete(WebSessionRow).where(WebSessionRow.user_id == row.id))
            after = _user_view(row)
            kind = "password" if password_hash is not None and before == after else "user"
            record_change(s, workspace, by, kind, row.email, before, after)
            s.flush()
            return UserRecord.of(row)

    def delete_user(self: _Sessions, workspace: str, email: str, *, by: str | None = None) -> None:
        with self._session() as s:
            row = _user_row(s, workspace, email)
            if row.role == "admin" and _admins_left(s, workspace, row.id) == 0 and \
                    len(s.scalars(select(UserRow.id).where(UserRow.workspace == workspace)).all()) > 1:
                raise AccountError(msg("{email} is the last admin of this workspace. Fix: make someone else admin "
                                       "first.", email=row.email))
            record_change(s, workspace, by, "user", row.email, _user_view(row), None)
            s.execute(delete(WebSessionRow).where(WebSessionRow.user_id == row.id))
            s.delete(row)

    def signed_in(self: _Sessions, user_id: int) -> None:
        with self._session() as s:
            row = s.get(UserRow, user_id)
            if row is not None:
                row.last_login_at = _now()

    # --- browser sessions --------------------------------------------------------------------------

    def add_session(self: _Sessions, workspace: str, user_id: int, id_hash: str, expires_at: datetime) -> None:
        now = _now()
        with self._session() as s:
            s.add(WebSessionRow(workspace=workspace, id_hash=id_hash, user_id=user_id, created_at=now,
                                last_seen_at=now, expires_at=expires_at))

    def session_user(self: _Sessions, workspace: str, id_hash: str) -> UserRecord | None:
        """The active user of a session of this workspace; None when unknown, expired or the user is disabled."""
        now = _now()
        with self._session() as s:
            found = s.execute(select(WebSessionRow, UserRow).join(UserRow, UserRow.id == WebSessionRow.user_id)
                              .where(WebSessionRow.workspace == workspace, WebSessionRow.id_hash == id_hash,
                                     UserRow.workspace == workspace)).one_or_none()
            if found is None:
                return None
            session, user = found
            if (_aware(session.expires_at) or now) <= now or user.disabled_at is not None:
                s.delete(session)
                return None
            if (now - (_aware(session.last_seen_at) or now)).total_seconds() > 60:
                session.last_seen_at = now
            return UserRecord.of(user)

    def end_session(self: _Sessions, workspace: str, id_hash: str) -> None:
        with self._session() as s:
            s.execute(delete(WebSessionRow).where(WebSessionRow.workspace == workspace,
                                                  WebSessionRow.id_hash == id_hash))

    def end_sessions(self: _Sessions, workspace: str, user_id: int) -> int:
        """Sign a user out everywhere; how many sessions ended."""
        with self._session() as s:
            result = s.execute(delete(WebSessionRow).where(WebSessionRow.workspace == workspace,
                                                           WebSessionRow.user_id == user_id))
            return int(getattr(result, "rowcount", 0) or 0)

    # --- failed sign-ins ---------------------------------------------------------------------------

    def sign_in_failures(self: _Sessions, workspace: str, key_hashes: Sequence[str], since: datetime
                         ) -> dict[str, tuple[int, datetime]]:
        """Per key (the hash of an address or a client): the failures since `since`, and the oldest of them."""
        with self._session() as s:
            rows = s.execute(select(SignInFailureRow.key_hash, func.count(), func.min(SignInFailureRow.at))
                             .where(SignInFailureRow.workspace == workspace,
                                    SignInFailureRow.key_hash.in_(list(key_hashes)), SignInFailureRow.at >= since)
                             .group_by(SignInFailureRow.key_hash)).all()
        return {str(k): (int(n), _aware(oldest) or since) for k, n, oldest in rows}

    def add_sign_in_failure(self: _Sessions, workspace: str, key_hashes: Sequence[str], at: datetime,
                            forget_before: datetime, keep: int) -> None:
        """A failure counted against each key; failures older than `forget_before` are dropped on the way, and
        beyond the workspace's newest `keep` (a flood of addresses fills no disk)."""
        with self._session() as s:
            s.execute(delete(SignInFailureRow).where(SignInFailureRow.at < forget_before))
            s.add_all(SignInFailureRow(workspace=workspace, key_hash=k, at=at) for k in key_hashes)
            s.flush()
            _keep_newest(s, SignInFailureRow, workspace, keep)

    def clear_sign_in_failures(self: _Sessions, workspace: str, key_hash: str) -> None:
        with self._session() as s:
            s.execute(delete(SignInFailureRow).where(SignInFailureRow.workspace == workspace,
                                                     SignInFailureRow.key_hash == key_hash))

    # --- started single sign-ons --------------------------------------------------------------------

    def add_sso_flow(self: _Sessions, workspace: str, state_hash: str, browser_hash: str, *, nonce: str,
                     verifier: str, target: str, redirect_uri: str, at: datetime, forget_before: datetime,
                     keep: int) -> None:
        """A sign-in sent to the provider; the ones started before `forget_before` are dropped on the way, and
        beyond the workspace's newest `keep` (anyone may start a sign-in: a flood of them fills no disk)."""
        with self._session() as s:
            s.execute(delete(SsoFlowRow).where(SsoFlowRow.started_at < forget_before))
            s.add(SsoFlowRow(workspace=workspace, state_hash=state_hash, browser_hash=browser_hash, nonce=nonce,
                             verifier=verifier, target=target, redirect_uri=redirect_uri, started_at=at))
            s.flush()
            _keep_newest(s, SsoFlowRow, workspace, keep)

    def take_sso_flow(self: _Sessions, workspace: str, state_hash: str, browser_hash: str
                      ) -> dict[str, Any] | None:
        """The sign-in started with this state by this browser, removed (taken once, whichever process asks);
        None when unknown or another browser's, which keeps it."""
        with self._session() as s:
            row = s.scalars(select(SsoFlowRow).where(SsoFlowRow.workspace == workspace,
                                                     SsoFlowRow.state_hash == state_hash)).first()
            if row is None or row.browser_hash != browser_hash:
                return None
            taken = s.execute(delete(SsoFlowRow).where(SsoFlowRow.id == row.id))
            if not getattr(taken, "rowcount", 0):  # another process took it first
                return None
            return {"nonce": row.nonce, "verifier": row.verifier, "target": row.target,
                    "redirect_uri": row.redirect_uri, "started_at": _aware(row.started_at)}

    # --- API tokens --------------------------------------------------------------------------------

    def add_token(self: _Sessions, workspace: str, *, name: str, token_hash: str, prefix: str, role: str,
                  teams: Sequence[str] = (), by: str | None = None) -> TokenRecord:
        _check_role(role)
        with self._session() as s:
            row = ApiTokenRow(workspace=workspace, name=name, token_hash=token_hash, prefix=prefix, role=role,
                              teams=list(teams), created_at=_now(), created_by=by)
            s.add(row)
            s.flush()
            record_change(s, workspace, by, "token", name, None,
                          {"id": row.id, "name": name, "prefix": prefix, "role": role, "teams": list(teams)})
            return TokenRecord.of(row)

    def tokens(self: _Sessions, workspace: str) -> list[TokenRecord]:
        with self._session() as s:
            return [TokenRecord.of(r) for r in s.scalars(select(ApiTokenRow).where(ApiTokenRow.workspace == workspace)
                                                          .order_by(ApiTokenRow.id))]

    def token_by_hash(self: _Sessions, workspace: str, token_hash: str) -> TokenRecord | None:
        """The workspace's active token with that hash, its last use now; None otherwise (another workspace's
        token included)."""
        with self._session() as s:
            row = s.scalars(select(ApiTokenRow).where(ApiTokenRow.workspace == workspace,
                                                      ApiTokenRow.token_hash == token_hash)).one_or_none()
            if row is None or row.revoked_at is not None:
                return None
            now = _now()
            if row.last_used_at is None or (now - (_aware(row.last_used_at) or now)).total_seconds() > 60:
                row.last_used_at = now
            return TokenRecord.of(row)

    def revoke_token(self: _Sessions, workspace: str, which: str, *, by: str | None = None) -> TokenRecord:
        """Revoke a token named by its id, name or prefix (an ambiguous name is refused)."""
        with self._session() as s:
            rows = s.scalars(select(ApiTokenRow).where(ApiTokenRow.workspace == workspace,
                                                       ApiTokenRow.revoked_at.is_(None))).all()
            found = [r for r in rows if which in (str(r.id), r.name, r.prefix)]
            if not found:
                raise AccountError(msg("there is no active token '{which}' in this workspace. Fix: list them with "
                                       "`kpilot token list`.", which=which))
            if len(found) > 1:
                raise AccountError(msg("{count} tokens are called '{which}'. Fix: revoke one by its id (`kpilot token "
                                       "list` shows them).", count=len(found), which=which))
            row = found[0]
            row.revoked_at = _now()
            record_change(s, workspace, by, "token", row.name, {"id": row.id, "revoked": False},
                          {"id": row.id, "revoked": True})
            s.flush()
            return TokenRecord.of(row)

    # --- the audit log -----------------------------------------------------------------------------

    def log_change(self: _Sessions, workspace: str, actor: str | None, kind: str, subject: str, before: Any = None,
                   after: Any = None) -> None:
        """Keep an audit log entry for a change made outside the store (a workspace file edited)."""
        with self._session() as s:
            record_change(s, workspace, actor, kind, subject, before, after)

    def changes(self: _Sessions, workspace: str, *, kind: str | None = None, limit: int | None = None
                ) -> list[ChangeRecord]:
        """The audit log, newest first."""
        query = select(ChangeRow).where(ChangeRow.workspace == workspace)
        if kind:
            query = query.where(ChangeRow.kind == kind)
        query = query.order_by(ChangeRow.id.desc())
        if limit:
            query = query.limit(limit)
        with self._session() as s:
            return [ChangeRecord.of(r) for r in s.scalars(query)]


__all__ = ["ROLES", "AccountError", "Accounts", "ChangeRecord", "TokenRecord", "UserRecord", "record_change"]
