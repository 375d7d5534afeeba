"""The workspace service: the one place the CLI, the web app and the Python API go through.

It opens a workspace folder (kpilot.yaml + data), keeps its state (the DuckDB warehouse) in a state
folder, loads sources, computes metrics and judges them. No domain logic lives in the doors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import duckdb

import kpilot
from kpilot.analysis.status import describe_when
from kpilot.compute import results
from kpilot.compute.engine import DuckDBEngine, WarehouseDamaged, connect_duckdb, is_damage
from kpilot.compute.in_place import InPlace
from kpilot.compute.metrics import ComputeReport, MetricComputer
from kpilot.model import Issue, KpilotError, Workspace, WorkspaceInvalid, load_workspace
from kpilot.model.errors import Message, did_you_mean, msg, one_of
from kpilot.model.loader import workspace_file
from kpilot.model.overrides import apply_overrides, as_json, changed_fields
from kpilot.model.periods import Grain, period_start
from kpilot.model.usage import columns_used, summed_columns
from kpilot.model.validate import validate
from kpilot.model.workspace import FILE_SOURCE_TYPES, Metric
from kpilot.model.yamlsrc import read_yaml_file
from kpilot.service import definitions
from kpilot.service.state import DATABASE_ENV, default_state_dir, explain_failure, signing_key
from kpilot.sources import files as file_sources
from kpilot.sources import push
from kpilot.sources.base import quote_ident
from kpilot.sources.databases.in_place import InPlaceTables
from kpilot.sources.files import LoadFailure
from kpilot.sources.files.common import scratch
from kpilot.sources.registry import syncable
from kpilot.sources.registry import table_specs as registry_specs
from kpilot.sources.sync import SyncReport, sync_sources
from kpilot.store import AnnotationRecord, AppStore, DecisionRecord, open_store, store_exists
from kpilot.store.alert_log import AlertRecord, OutboxRecord
from kpilot.store.credentials import CredentialVault, check_name

Progress = Callable[[int, int, str], None]
VALIDATED_FILE = "validated"  # the hash of the last workspace that passed its check before a compute
log = logging.getLogger("kpilot.service")
ALERT_SECRETS = "alerts"  # the `kpilot secrets` source under which the alert channels' settings are stored


class WorkspaceService:
    """A workspace opened from its folder; cheap to create, holds one DuckDB connection."""

    def __init__(self, path: Path, *, state_dir: Path | None = None, store: AppStore | None = None,
                 state_root: Path | None = None, database_url: str | None = None):
        """`state_dir`: the state folder itself; `state_root`: a folder of state folders (`--state-dir`);
        `database_url`: the application database (default: $KPILOT_DATABASE_URL, else app.db in the state folder)."""
        self.file = workspace_file(Path(path))
        self.dir = self.file.parent
        self.base, self.warnings = load_workspace(self.file)  # kpilot.yaml as written
        self.ws = self.base  # the effective workspace: kpilot.yaml with the settings saved in the web app
        self.state_dir = state_dir or default_state_dir(self.dir, self.base.workspace, state_root)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._in_place: InPlace | None = None
        # The application database (settings, pushed data, decisions): the web's when given, else opened on first
        # use ($KPILOT_DATABASE_URL, or app.db in the state folder) and closed with the service.
        self.store = store
        self._own_store = False
        self.database_url = database_url  # None: $KPILOT_DATABASE_URL, else app.db in the state folder
        self.settings_problem: WorkspaceInvalid | None = None  # saved settings kpilot.yaml no longer accepts
        self.apply_settings()
        self._note_definitions()

    def _note_definitions(self) -> None:
        """Write what an edit of kpilot.yaml changed to the audit log (see `kpilot.service.definitions`); never
        stops the workspace from opening."""
        if not self.has_app_store():
            return
        try:
            definitions.note_changes(self.base, self.state_dir, self.app_store())
        except Exception as exc:  # the audit log's bookkeeping must not block any command
            log.warning("the definitions' changes were not written to the audit log: %s", exc)

    # --- the effective workspace ------------------------------------------------------------------

    def has_app_store(self) -> bool:
        """Whether an application database exists to read settings from (none is created just to read)."""
        return self.store is not None or store_exists(self.state_dir, self.database_url)

    def settings(self) -> dict[str, dict[str, object]]:
        """The settings saved in the web app or through the API: metric key -> {field: value}."""
        if not self.has_app_store():
            return {}
        return self.app_store().overrides(self.base.workspace)

    def apply_settings(self) -> Workspace:
        """Serve kpilot.yaml with the saved settings from now on (every door: CLI, pages, API, worker). Settings
        that kpilot.yaml no longer accepts are set aside (`settings_problem` says why) and kpilot.yaml is served."""
        try:
            self.ws = apply_overrides(self.base, self.settings())
            self.settings_problem = None
        except WorkspaceInvalid as exc:
            self.ws, self.settings_problem = self.base, exc
        return self.ws

    def save_settings(self, key: str, fields: Mapping[str, object], *, by: str | None = None) -> Workspace:
        """Change a metric's editable settings (targets, bands, owners, decision; None: back to kpilot.yaml's),
        checked by kpilot.yaml's rules first; raises WorkspaceInvalid (nothing saved) when one breaks them."""
        if key not in self.base.metric_keys:
            raise KpilotError(msg("unknown metric '{metric}';{hint} metrics: {metrics}", metric=key,
                                  hint=did_you_mean(key, self.base.metric_keys),
                                  metrics=one_of(self.base.metric_keys, 40)))
        stored = self.settings()
        edited = {**stored.get(key, {}), **{f: as_json(v) for f, v in fields.items()}}
        back = [f for f, v in fields.items() if v is None]
        merged = apply_overrides(self.base, {**stored, key: {f: v for f, v in edited.items() if f not in back}})
        return self.keep_settings(key, merged.metric(key), by=by)

    def keep_settings(self, key: str, edited: Metric, *, by: str | None = None) -> Workspace:
        """Keep as settings the editable fields of `edited` (a metric already checked) that differ from kpilot.yaml;
        the others go back to kpilot.yaml's."""
        store = self.app_store()
        changed, same = changed_fields(self.base.metric(key), edited)
        for name in same:
            store.clear_override(self.base.workspace, key, name, user=by)
        for name, value in changed.items():
            store.set_override(self.base.workspace, key, name, value, user=by)
        return self.apply_settings()

    def reset_settings(self, key: str, *, by: str | None = None) -> Workspace:
        """Drop every saved setting of a metric: kpilot.yaml's values again."""
        store = self.app_store()
        for name in self.settings().get(key, {}):
            store.clear_override(self.base.workspace, key, name, user=by)
        return self.apply_settings()

    # --- state ----------------------------------------------------------------------------------

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._con = connect_duckdb(self.state_dir / "warehouse.duckdb")
        return self._con

    @property
    def in_place(self) -> InPlace:
        """The tables computed in their own database (`mode: in_place`); connects on first use."""
        if self._in_place is None:
            self._in_place = InPlace(self.ws, InPlaceTables(self.ws, self.dir, state_dir=self.state_dir))
        return self._in_place

    def close(self) -> None:
        if self._in_place is not None:
            self._in_place.close()
            self._in_place = None
        self.release_warehouse()
        if self._own_store and self.store is not None:
            self.store.close()
            self.store = None
            self._own_store = False

    def __enter__(self) -> WorkspaceService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.ws.timezone)).date()

    # --- sources --------------------------------------------------------------------------------

    def table_files(self) -> list[file_sources.TableFile]:
        out: list[file_sources.TableFile] = []
        for source in self.ws.sources:
            if source.type in FILE_SOURCE_TYPES:
                out.extend(file_sources.discover(source, self.dir))
        return out

    def loaded_schema(self) -> dict[str, dict[str, str]]:
        engine = DuckDBEngine(self.con)
        return {t: engine.columns(t) for t in engine.tables()}

    def compute_schema(self) -> dict[str, dict[str, str]]:
        """Columns of every table metrics read: the warehouse's, and those of the in-place tables (from their
        database's catalog, which wins over a copy left in the warehouse)."""
        return {**self.loaded_schema(), **self.in_place.schema()}

    def source_schema(self, *, prefer_loaded: bool = False) -> dict[str, dict[str, str]]:
        """Columns of every table: sniffed from the source files (what a load would read), or, with
        prefer_loaded, the warehouse's columns for tables loaded before (a file that lost a column is
        then reported by the load, against the file, not against the definition)."""
        has_warehouse = (self.state_dir / "warehouse.duckdb").exists()
        schema = self.loaded_schema() if has_warehouse else {}
        for tf in self.table_files():
            if prefer_loaded and tf.table in schema:
                continue
            schema[tf.table] = file_sources.sniff_columns(tf)
        schema.update(self.in_place.schema())
        return schema

    def validate(self, *, with_data: bool = True, today: date | None = None,
                 environ: Mapping[str, str] | None = None) -> list[Issue]:
        """All issues (errors and warnings); with_data checks columns against the source files. The current
        period's checks (a KPI without a target for it) use `today`, by default the workspace's today; `environ`
        (the process's environment, by the commands that send) checks the SMTP server and webhook URLs."""
        _, smap = read_yaml_file(self.file)
        checks = partial(validate, today=today or self.today(), environ=environ)
        schema = None
        if with_data:
            try:
                schema = self.source_schema()
            except KpilotError as exc:
                return [*checks(self.ws, smap, None),
                        Issue("error", "source", exc.message, None, "sources",
                              msg("fix the source, then validate again"))]
            unsynced = self._unsynced(set(schema))
            if unsynced:
                return [*checks(self.ws, smap, None),
                        Issue("warning", "not_synced", msg(
                            "table(s) {tables} of database source(s) {sources} are not copied yet, so no column "
                            "was checked against the data", tables=", ".join(unsynced),
                            sources=", ".join(sorted(set(unsynced.values())))), None, "sources",
                              msg("run `kpilot sync`, then validate again"))]
        return checks(self.ws, smap, schema)

    def _unsynced(self, loaded: set[str]) -> dict[str, str]:
        """Tables used by models that a database source copies but that are not in the warehouse yet."""
        used = {m.table for m in self.ws.models}
        return {t: s for t, s in sorted(self.database_tables().items()) if t in used and t not in loaded}

    def required_columns(self) -> dict[str, dict[str, Message]]:
        """table -> column -> why: every column the definitions use, so a load missing one fails."""
        return columns_used(self.ws)

    def database_tables(self) -> dict[str, str]:
        """Warehouse table -> key of the database source that copies it (tables computed in place excluded)."""
        return {table: s.key for s in self.ws.sources if syncable(s)
                for table, spec in registry_specs(s).items() if spec.mode == "copy"}

    def _database_and_in_place(self) -> dict[str, str]:
        return {**self.database_tables(), **self.ws.in_place_tables()}

    @staticmethod
    def _one_source_per_table(files: list[file_sources.TableFile], synced: dict[str, str]) -> None:
        for tf in files:
            if tf.table in synced:
                raise KpilotError(msg(
                    "table '{table}' would come from both file source '{files}' and database source '{source}'. "
                    "Fix: give one of them another name with `tables:`.", table=tf.table, files=tf.source.key,
                    source=synced[tf.table]))

    def sync(self, source: str | None = None, *, full: bool = False,
             on_batch: Callable[[str, int], None] | None = None) -> SyncReport:
        """Copy the tables of the database sources (or of one) into the warehouse; see docs/connectors.md."""
        sources = [s for s in self.ws.sources if syncable(s)]
        keys = [s.key for s in sources]
        if source is not None:
            if source not in keys:
                raise KpilotError(msg("no database source '{source}';{hint} database sources: {sources}",
                                      source=source, hint=did_you_mean(source, keys), sources=one_of(keys)))
            sources = [s for s in sources if s.key == source]
        if not sources:
            raise KpilotError(msg("{file} declares no database source (postgres, mysql, sqlite or duckdb) to sync. "
                                  "File sources are read by `kpilot load`.", file=str(self.file)))
        self._one_source_per_table(self.table_files(), self._database_and_in_place())
        from kpilot.store.credentials import stored_credentials

        # Credentials missing from the environment and the secrets file are looked up in the app database.
        with stored_credentials(self.state_dir, self.ws.workspace) as stored:
            return sync_sources(self.con, sources, self.dir, full=full, on_batch=on_batch, stored=stored)

    def app_store(self) -> AppStore:
        if self.store is None:
            self.store = open_store(self.state_dir, self.database_url)
            self._own_store = True
        return self.store

    def alert_secret_names(self) -> list[str]:
        """The settings the alert channels read that may be stored with `kpilot secrets set alerts NAME`: the SMTP
        server and password, and each channel's `url_env` and `secret_env`."""
        names = ["KPILOT_SMTP_URL", "KPILOT_SMTP_PASSWORD"]
        names += [n for c in self.ws.channels for n in (c.url_env, c.secret_env) if n]
        return list(dict.fromkeys(names))

    def alert_secrets(self) -> dict[str, str]:
        """The alert channels' settings stored encrypted (`kpilot secrets set alerts NAME`); they win over the
        environment's. Empty when no application database exists."""
        if not self.has_app_store():
            return {}
        with self.credentials() as vault:
            found = {n: vault.get(self.ws.workspace, ALERT_SECRETS, n) for n in self.alert_secret_names()}
        return {n: v for n, v in found.items() if v}

    def check_credential(self, source: str, name: str) -> None:
        """Refuse a credential of a source kpilot.yaml does not declare, or under a name that is no variable name:
        before its value is asked for. The source `alerts` holds the alert channels' settings."""
        if source == ALERT_SECRETS:
            names = self.alert_secret_names()
            if name not in names:
                raise KpilotError(msg("the alert channels read no setting named {name};{hint} they read: {names}",
                                      name=name, hint=did_you_mean(name, names), names=one_of(names)))
            return
        keys = [s.key for s in self.ws.sources]
        if source not in keys:
            raise KpilotError(msg("no source '{source}' in {file};{hint} sources: {sources}", source=source,
                                  file=str(self.file), hint=did_you_mean(source, keys), sources=one_of(keys)))
        check_name(name)

    @contextmanager
    def credentials(self, database_url: str | None = None) -> Iterator[CredentialVault]:
        """The sources' credentials, stored encrypted in the application database (`database_url`, else the
        workspace's), open for the block."""
        with open_store(self.state_dir, database_url or self.database_url) as store:
            yield CredentialVault(store, self.state_dir)

    def load_pushed(self) -> dict[str, int]:
        """Materialize what was pushed (`POST /api/v1/push`) into the warehouse: each table of a push source
        and `pushed_metric_values`; table -> rows. Each table is replaced atomically (a failure keeps the
        previous one). Nothing to do, and no database opened, when the workspace uses no pushed data."""
        tables = push.push_tables(self.ws)
        out: dict[str, int] = {}
        if not tables and not push.wants_values(self.ws):
            return out
        store = self.app_store()
        for table in tables:
            out[table] = push.materialize_rows(self.con, self.ws, table, partial(store.pushed_rows_after,
                                                                                self.ws.workspace, table))
        values = [(v.metric, v.period, v.value, v.pushed_at) for v in store.pushed_values(self.ws.workspace)]
        out[push.VALUES_TABLE] = push.materialize_values(self.con, values)
        return out

    def declared_types(self) -> dict[str, dict[str, str]]:
        return {m.table: dict(m.columns) for m in self.ws.models if m.columns}

    def load(self, *, force: bool = False, progress: Callable[[str, int, int], None] | None = None,
             source: str | None = None, allow_shrink: bool = False, strict: bool = False) -> file_sources.LoadReport:
        """Load every file source (or the one keyed `source`) into the warehouse (atomically; unchanged files
        are skipped). With `force`, every file is read again, and a damaged warehouse is set aside (renamed
        `warehouse.duckdb.damaged-<time>`) and rebuilt from the sources. A file that would empty its table or
        remove more than half of its rows fails the load, unless `allow_shrink`.

        A load whose files fail changes nothing and is recorded (`last_load_failure`). Reads (the board, a
        series, the analysis) then go on with the last good data: the report carries the failure instead of
        raising it. The LoadError is raised with `strict` (`kpilot load`, the scheduler), and whenever a table
        the models read from files was never loaded (there is no last good data)."""
        try:
            report = self._load_or_rebuild(force=force, progress=progress, source=source, allow_shrink=allow_shrink)
        except file_sources.LoadError as exc:
            failure = self._record_load_failure(source, exc.message)
            if strict or failure is None or not self._has_last_good_data():
                raise
            return file_sources.LoadReport([], failure)
        file_sources.clear_failures(self.con, source)
        return report

    def last_load_failure(self) -> file_sources.LoadFailure | None:
        """The latest load that failed, when no load has succeeded since: what reads show is then the last good
        data. None when the latest load succeeded or nothing was ever loaded (no warehouse is created)."""
        if self._con is None and not (self.state_dir / "warehouse.duckdb").exists():
            return None
        return file_sources.last_failure(self.con)

    def _record_load_failure(self, source: str | None, message: str) -> file_sources.LoadFailure | None:
        """Keep the failure for the reads that follow; None when the warehouse cannot keep it (a full disk)."""
        try:
            return file_sources.record_failure(self.con, source, message, datetime.now(UTC))
        except (duckdb.Error, KpilotError):
            return None

    def _has_last_good_data(self) -> bool:
        """Whether every table the models read from files is in the warehouse, so that reads can answer."""
        elsewhere = {*self._database_and_in_place(), *push.push_tables(self.ws), push.VALUES_TABLE}
        return {m.table for m in self.ws.models} - elsewhere <= set(self.loaded_schema())

    def _load_or_rebuild(self, *, force: bool, progress: Callable[[str, int, int], None] | None,
                         source: str | None, allow_shrink: bool) -> file_sources.LoadReport:
        try:
            return self._load(force=force, progress=progress, source=source, allow_shrink=allow_shrink)
        except (duckdb.Error, WarehouseDamaged) as exc:
            if not (force and is_damage(exc)):
                raise
        self.set_aside_warehouse()
        return self._load(force=force, progress=progress, source=source, allow_shrink=allow_shrink)

    def set_aside_warehouse(self) -> Path:
        """Rename a damaged warehouse (and its write-ahead log) out of the way; the next use starts a new one."""
        self.release_warehouse()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        target = self.state_dir / f"warehouse.duckdb.damaged-{stamp}"
        for suffix in ("", ".wal"):
            path = self.state_dir / f"warehouse.duckdb{suffix}"
            if path.exists():
                path.rename(target.with_name(target.name + suffix))
        return target

    def _load(self, *, force: bool, progress: Callable[[str, int, int], None] | None,
              source: str | None, allow_shrink: bool) -> file_sources.LoadReport:
        files = self.table_files()
        used = {m.table for m in self.ws.models}
        pushed = {*push.push_tables(self.ws), push.VALUES_TABLE}
        self._one_source_per_table(files, {**self.database_tables(), **push.push_tables(self.ws)})
        if source is None:
            self.load_pushed()
        loaded = set(self.loaded_schema())
        synced = self._database_and_in_place()
        self._one_source_per_table(files, synced)
        unsynced = self._unsynced(loaded)
        if unsynced:
            raise KpilotError(msg(
                "table(s) {tables} come from database source(s) {sources} and have not been copied yet. "
                "Fix: run `kpilot sync` first.", tables=", ".join(unsynced),
                sources=", ".join(sorted(set(unsynced.values())))))
        missing = sorted(used - {tf.table for tf in files} - loaded - set(synced) - pushed)
        if missing and files:
            found = ", ".join(sorted(tf.table for tf in files)) or msg("(none)")
            raise KpilotError(msg(
                "no source file for table(s) {tables} used by the models; files found: {found}. "
                "Fix: add data/<table>.csv, or map it with `tables:` on the source.", tables=", ".join(missing),
                found=found))
        # A definition that names a column no file has is a definition error: report it at its line in
        # kpilot.yaml, before any file is read into the warehouse.
        _, smap = read_yaml_file(self.file)
        declared = self.declared_types()
        try:
            expected = self.source_schema(prefer_loaded=True)
        except file_sources.LoadError:
            expected = None  # a broken file: the load below reports it with its line and column
        if expected is not None:
            self._expect_numbers(files, expected, declared)
            issues = validate(self.ws, smap, expected)
            if any(i.severity == "error" for i in issues):
                raise WorkspaceInvalid(issues)
        if source is not None:
            files = [tf for tf in files if tf.source.key == source]
        required = self.required_columns()
        report = file_sources.nothing_to_load(self.con, files, force=force, declared=declared)
        if report is not None:
            return report
        with self._file_access() as con:
            return file_sources.load_tables(con, files, required=required, declared=declared, force=force,
                                            allow_shrink=allow_shrink, on_progress=progress)

    @contextmanager
    def _file_access(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The warehouse opened with file access, for the file loader alone (it runs SQL kpilot writes, with the
        paths as parameters); the sandboxed connection every other query uses is closed meanwhile and reopened
        on the next use. Every connection of this process to the warehouse must be released first
        (`release_warehouse`): DuckDB shares one configuration between them."""
        self.release_warehouse()
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        con = connect_duckdb(self.state_dir / "warehouse.duckdb", files=True)
        try:
            yield con
        finally:
            con.close()

    def release_warehouse(self) -> None:
        """Close the warehouse connection (it reopens on the next use)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def _expect_numbers(self, files: list[file_sources.TableFile], expected: dict[str, dict[str, str]],
                        declared: dict[str, dict[str, str]]) -> None:
        """On a first load, a summed column or a model's time column that the sniffer read as text because of a
        few bad values (a typo, a NUL byte) is declared numeric or a timestamp, so that the load names the bad
        value's line instead of blaming the definition."""
        loaded = set(self.loaded_schema())
        by_table = {tf.table: tf for tf in files}
        wanted: list[tuple[str, str, str]] = [(t, c, "DOUBLE") for t, cs in summed_columns(self.ws).items() for c in cs]
        wanted += [(m.table, m.time, "TIMESTAMP") for m in self.ws.models if m.time]
        for table, column, kind in wanted:
            if table in loaded or table not in expected or table not in by_table:
                continue
            typ = {c.lower(): t for c, t in expected[table].items()}.get(column.lower())
            if typ is None or typ.upper() != "VARCHAR" or column in declared.get(table, {}):
                continue
            if self._mostly(by_table[table], column, kind):
                declared.setdefault(table, {})[column] = kind.lower()
                expected[table][column] = kind

    @staticmethod
    def _mostly(tf: file_sources.TableFile, column: str, kind: str) -> bool:
        """Whether at least 90 % of a column's values read as `kind` (DOUBLE or TIMESTAMP; a scratch load with
        the same file options)."""
        try:
            with scratch() as con:
                file_sources.load_tables(con, [tf])
                rows = con.execute(f"SELECT count(TRY_CAST({quote_ident(column)} AS {kind})), "
                                   f"count({quote_ident(column)}) FROM {quote_ident(tf.table)}").fetchall()
        except (file_sources.LoadError, duckdb.Error):
            return False
        numbers, values = rows[0]
        return bool(values) and numbers >= 0.9 * values

    def recorded_findings(self, *, kind: str | None = None, metric: str | None = None) -> list[dict[str, object]]:
        """The early warnings and anomalies on record (kept by `kpilot analyze`, never lost), newest first."""
        return [f.to_dict() for f in results.list_findings(self.con, kind=kind, metric=metric)]

    # --- compute --------------------------------------------------------------------------------

    def _checked_workspace(self, schema: Mapping[str, Mapping[str, str]] | None = None) -> Workspace:
        """The workspace, checked against the loaded tables' columns (errors cite file:line).

        The check is a pure function of kpilot.yaml's bytes, the saved settings and the columns: a check that
        passed is remembered in the state folder under a hash of all three (and kpilot's version), and an
        unchanged workspace is not checked again."""
        schema = self.compute_schema() if schema is None else schema
        missing = sorted({m.table for m in self.ws.models} - set(schema))
        if missing:
            raise KpilotError(msg("table(s) {tables} are not loaded yet. Fix: run `kpilot load`.",
                                  tables=", ".join(missing)))
        key = self._validation_key(schema)
        marker = self.state_dir / VALIDATED_FILE
        try:
            if key is not None and marker.read_text(encoding="utf-8") == key:
                return self.ws
        except (OSError, UnicodeDecodeError):
            pass
        _, smap = read_yaml_file(self.file)
        issues = validate(self.ws, smap, schema)
        if any(i.severity == "error" for i in issues):
            raise WorkspaceInvalid(issues)
        if key is not None:
            try:
                tmp = marker.with_name(f"{marker.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(key, encoding="utf-8")
                tmp.replace(marker)
            except OSError:
                pass  # a read-only state folder: the workspace is checked each time
        return self.ws

    def _validation_key(self, schema: Mapping[str, Mapping[str, str]]) -> str | None:
        """What a passed check depends on, hashed; None when kpilot.yaml cannot be read (the check says why)."""
        try:
            text = self.file.read_bytes()
        except OSError:
            return None
        h = hashlib.sha256(f"{kpilot.__version__}\0".encode())
        h.update(text + b"\0" + repr(self.ws).encode() + b"\0")
        h.update(json.dumps({t: dict(c) for t, c in schema.items()}, sort_keys=True).encode())
        return h.hexdigest()

    def computer(self, as_of: date | None = None) -> MetricComputer:
        """A computer at `as_of` (default today: materialized, incremental) or replaying a past date."""
        schema = self.compute_schema()
        ws = self._checked_workspace(schema)
        replay = as_of is not None
        return MetricComputer(DuckDBEngine(self.con), ws, schema, as_of=as_of or self.today(),
                              replay=replay, store=self.con, engines=self.in_place.model_engines())

    def compute(self, *, progress: Progress | None = None) -> ComputeReport:
        return self.computer().materialize(progress=progress)

    # --- judge ----------------------------------------------------------------------------------

    # The analysis (forecast models, scipy) is imported when a command judges, not by `kpilot load` or `validate`.

    def metric_status(self, mc: MetricComputer, key: str, role: str = "metric") -> MetricStatus:
        """One metric judged at the period holding the computer's as-of date (on the board or not)."""
        from kpilot.insights import Insights
        from kpilot.insights.board import judge

        return judge(Insights(self, computer=mc), key, role)

    def board_keys(self) -> list[tuple[str, str]]:
        """(metric, role) of the North Star, then of the board's KPIs."""
        keys: list[tuple[str, str]] = []
        if self.ws.north_star:
            keys.append((self.ws.north_star, "north_star"))
        keys.extend((k, "board") for k in self.ws.board if k != self.ws.north_star)
        return keys

    def board(self, *, as_of: date | None = None, all_metrics: bool = False) -> list[MetricStatus]:
        """The North Star, then the board's KPIs (then every other metric when all_metrics), judged."""
        keys = self.board_keys()
        if all_metrics or not keys:
            shown = {k for k, _ in keys}
            keys.extend((m.key, "metric") for m in self.ws.metrics if m.key not in shown)
        if as_of is None:
            self.load()
        mc = self.computer(as_of)
        if as_of is None:
            mc.materialize()
        from kpilot.insights import Insights
        from kpilot.insights.board import board as judge_board

        return judge_board(Insights(self, computer=mc), keys)

    def series(self, key: str, *, grain: Grain | None = None, first: date | None = None, last: date | None = None,
               as_of: date | None = None, judged: MetricStatus | None = None) -> list[dict[str, object]]:
        """Every period of a metric: period start, label, value, target, status (the current one paced).

        At the metric's own grain, the period the board judges it on carries the board's verdict (`verdict`) and
        that verdict's colour as its status: a firing decision rule makes a period on track "at risk", and data
        that stopped arriving has no verdict, at every door alike. `judged`: the metric already judged as of the
        same day (its verdict is taken instead of judging it again)."""
        metric = self.ws.metric(key)
        if as_of is None:
            self.load()
        mc = self.computer(as_of)
        if as_of is None:
            mc.materialize()
        from kpilot.i18n import VERDICT_COLOURS
        from kpilot.insights import Insights
        from kpilot.service import tables

        ins = Insights(self, computer=mc)
        rows = tables.series_rows(ins, key, grain or metric.grain, first, last)
        period = period_start(mc.as_of, metric.grain, self.ws.week_start).isoformat()
        at = next((i for i, r in enumerate(rows) if r["period"] == period), None)
        if (grain or metric.grain) is metric.grain and at is not None:
            from kpilot.insights.board import judge

            if judged is None or judged.key != key or judged.period.isoformat() != period:
                judged = judge(ins, key)
            verdict = judged.verdict.value
            rows[at] = {**rows[at], "status": VERDICT_COLOURS[verdict], "verdict": verdict}
        return rows

    def breakdown(self, key: str, dims: list[str], *, grain: Grain | None = None, first: date | None = None,
                  last: date | None = None, as_of: date | None = None) -> list[dict[str, object]]:
        """A metric per period and per value of the given dimensions (e.g. demos by leads.channel)."""
        metric = self.ws.metric(key)
        if as_of is None:
            self.load()
        from kpilot.service import tables

        return tables.breakdown_rows(self.computer(as_of), key, dims, grain or metric.grain, first, last)


if TYPE_CHECKING:
    from kpilot.insights.board import MetricStatus


def __getattr__(name: str) -> Any:
    """`MetricStatus`, the board's typed tile, imported on first use (with the analysis it comes from)."""
    if name == "MetricStatus":
        from kpilot.insights.board import MetricStatus

        return MetricStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATABASE_ENV",
    "AlertRecord",
    "AnnotationRecord",
    "AppStore",
    "DecisionRecord",
    "LoadFailure",
    "MetricStatus",
    "OutboxRecord",
    "WorkspaceService",
    "default_state_dir",
    "describe_when",
    "explain_failure",
    "open_store",
    "push",
    "signing_key",
]
