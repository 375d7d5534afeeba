"""Copy the tables of any connector (databases, SaaS APIs) into the warehouse: in full (all or nothing), or
incrementally on a cursor column.

An incremental copy commits batch after batch, each in one DuckDB transaction with the table's state in
`kpilot.syncs`, so a sync killed at any point resumes from its last committed cursor. A commit never ends
in the middle of rows sharing one cursor value (they are held back for the next one). The next sync reads
`cursor >= last`: the rows of the last value are read again and replace their copies (by primary key when
there is one, else all the rows with that value), so a row that arrived late with that value is not missed
and none is copied twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from kpilot import warehouse
from kpilot.model.errors import did_you_mean, msg, one_of
from kpilot.model.workspace import Source, SourceTable
from kpilot.sources.base import (
    Connector,
    SourceTableInfo,
    SyncError,
    SyncState,
    main_tables,
    quote_ident,
    read_states,
    write_state,
)
from kpilot.sources.registry import connector_for, syncable, table_specs
from kpilot.sources.secrets import CredentialLayers, StoredLookup, secrets_file

OnBatch = Callable[[str, int], None]
_BATCH = "_kpilot_sync_batch"
_GROUP_BYTES = 64 << 20  # a full copy inserts this much at a time: each INSERT has a fixed cost


@dataclass
class TableSync:
    """What one sync did to one table: 'copied' (in full), 'synced' (incremental), or 'failed'."""

    source: str
    table: str
    source_table: str
    status: str
    rows_read: int = 0
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class SyncReport:
    tables: list[TableSync] = field(default_factory=list)

    @property
    def failed(self) -> list[TableSync]:
        return [t for t in self.tables if t.status == "failed"]


def sync_sources(con: duckdb.DuckDBPyConnection, sources: Iterable[Source], base_dir: Path, *, full: bool = False,
                 environ: Mapping[str, str] | None = None, on_batch: OnBatch | None = None,
                 stored: StoredLookup | None = None) -> SyncReport:
    """Copy the tables of every database source; a source or table that fails keeps its previous data.

    Credentials come from `environ` (default: the process environment), else from the secrets file, else from
    `stored` (the credentials kept encrypted in the application database, by source and name).
    """
    env = os.environ if environ is None else environ
    secrets = secrets_file(base_dir, env)
    report = SyncReport()
    warehouse.ensure_schema(con)
    for source in sources:
        if not syncable(source):
            continue
        # Tables computed in place (`mode: in_place`) stay in their database: nothing to copy.
        specs = {name: spec for name, spec in table_specs(source).items() if spec.mode == "copy"}
        if not specs:
            continue
        try:
            connector = connector_for(source, base_dir, CredentialLayers(env, secrets, source.key, stored), secrets)
        except SyncError as exc:
            report.tables.extend(_failed(con, source, specs, exc))
            continue
        try:
            try:
                found = connector.discover()
            except SyncError as exc:
                report.tables.extend(_failed(con, source, specs, exc))
                continue
            except (KeyError, TypeError, AttributeError, ValueError) as exc:  # an API answer of another shape
                report.tables.extend(_failed(con, source, specs, _odd_answer(source, "", exc)))
                continue
            for name, spec in specs.items():
                started = time.perf_counter()
                try:
                    info = resolve(source, spec, found, getattr(connector, "search_path", ()))
                    done = sync_table(con, connector, source, name, spec, info, full=full, on_batch=on_batch)
                except pa.ArrowException as exc:
                    report.tables.extend(_failed(con, source, {name: spec}, SyncError(msg(
                        "source '{source}', table {table}: the rows could not be converted: {reason}. Nothing more "
                        "was written; the table keeps the rows committed so far.", source=source.key, table=name,
                        reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__))))
                    continue
                except SyncError as exc:
                    report.tables.extend(_failed(con, source, {name: spec}, exc))
                    continue
                except (KeyError, TypeError, AttributeError, ValueError) as exc:  # an API answer of another shape
                    report.tables.extend(_failed(con, source, {name: spec}, _odd_answer(source, name, exc)))
                    continue
                done.seconds = time.perf_counter() - started
                report.tables.append(done)
        finally:
            connector.close()
    return report


def _odd_answer(source: Source, table: str, exc: Exception) -> SyncError:
    """A SyncError for an answer that is not shaped as the connector expects (instead of a traceback)."""
    reason = f"{type(exc).__name__}: {exc}"[:200]
    if not table:
        return SyncError(msg("source '{source}': an answer did not have the expected shape ({reason}). Nothing was "
                             "written; the tables keep their last good data. Fix: check the source's `base_url` "
                             "option.", source=source.key, reason=reason))
    return SyncError(msg("source '{source}', table {table}: an answer did not have the expected shape ({reason}). "
                         "Nothing more was written; the table keeps the rows committed so far. Fix: check the "
                         "source's `base_url` option.", source=source.key, table=table, reason=reason))


def _failed(con: duckdb.DuckDBPyConnection, source: Source, specs: dict[str, SourceTable],
            exc: SyncError) -> list[TableSync]:
    """Mark the tables failed in kpilot.syncs (their rows and cursor stay those of the last good sync)."""
    out = []
    for name, spec in specs.items():
        con.execute("UPDATE kpilot.syncs SET status = 'failed', error = ? WHERE table_name = ?", [str(exc), name])
        out.append(TableSync(source.key, name, spec.table or name, "failed", error=exc.message))
    return out


def resolve(source: Source, spec: SourceTable, found: Sequence[SourceTableInfo],
            search_path: Sequence[str] = ()) -> SourceTableInfo:
    """The source table `spec.table` names: `schema.table`, or a table name that only one schema has, or
    that the first schema of the connection's search path has (PostgreSQL's own rule for a bare name)."""
    wanted = spec.table or ""
    exact = [t for t in found if t.qualified == wanted or (not t.schema and t.name == wanted)]
    by_name = exact or [t for t in found if t.name == wanted]
    if len(by_name) == 1:
        return by_name[0]
    for schema in search_path:
        in_path = [t for t in by_name if t.schema == schema]
        if len(in_path) == 1:
            return in_path[0]
    if by_name:
        raise SyncError(msg("source '{source}': several schemas have a table '{table}': {tables}. Fix: write "
                            "`table: schema.table`.", source=source.key, table=wanted,
                            tables=", ".join(t.qualified for t in by_name)))
    counts: dict[str, int] = {}
    for t in found:
        counts[t.name] = counts.get(t.name, 0) + 1
    names = [t.name if counts[t.name] == 1 or not t.schema else t.qualified for t in found]
    raise SyncError(msg("source '{source}': table '{table}' not found;{hint} tables: {tables}. Fix: correct "
                        "`tables:` in the source, or check that the database user may read the table.",
                        source=source.key, table=wanted, hint=did_you_mean(wanted, names), tables=one_of(names)))


def _check_columns(source: Source, info: SourceTableInfo, spec: SourceTable) -> None:
    names = [c.name for c in info.columns]
    wanted = [("cursor", spec.cursor)] if spec.cursor else []
    wanted += [("primary_key", k) for k in spec.key_columns]
    for what, column in wanted:
        if column not in names:
            raise SyncError(msg("source '{source}': table {table} has no column '{column}' (its `{field}`);{hint} "
                                "columns: {columns}. Fix: correct `{field}` in the source's `tables:`.",
                                source=source.key, table=info.qualified if info.schema else info.name,
                                column=column, field=what, hint=did_you_mean(column, names), columns=one_of(names)))


def sync_table(con: duckdb.DuckDBPyConnection, connector: Connector, source: Source, name: str, spec: SourceTable,
               info: SourceTableInfo, *, full: bool = False, on_batch: OnBatch | None = None) -> TableSync:
    """Copy one table: in full in one transaction, or incrementally, one committed batch at a time."""
    _check_columns(source, info, spec)
    columns = {c.name: c.type for c in info.columns}
    key = spec.key_columns
    prev = read_states(con).get(name)
    state = SyncState(name, source.key, spec.table or name, spec.cursor, None, key, columns, 0,
                      (prev.version if prev else 0) + 1, _now())
    reads = _Reads(connector, info, source.batch_size, name, on_batch)
    exists = name in main_tables(con)
    resume = (prev is not None and exists and not full and spec.cursor is not None
              and prev.same_shape(source.key, state.source_table, spec.cursor, key, columns))
    if resume and prev is not None:
        state.cursor_value, state.rows = prev.cursor_value, prev.rows
    elif spec.cursor is None or prev is not None:
        # A full copy, or a fresh copy of a table that holds data: all or nothing, in one transaction.
        with _transaction(con, source, name):
            _create(con, name, info)
            last = None
            for group in _grouped(reads.batches(spec.cursor, None, inclusive=False)):
                _insert(con, name, group, key=[])
                last = group
            _commit_state(con, state, spec.cursor, last)
        return TableSync(source.key, name, state.source_table, "copied", reads.count, state.rows)
    else:
        # The first copy of an incremental table: commit batch by batch, so that an interrupted copy resumes.
        with _transaction(con, source, name):
            _create(con, name, info)
            _commit_state(con, state, None, None)

    cursor = spec.cursor
    assert cursor is not None
    # Rows with the last committed cursor value are read again (a row may have arrived since with that
    # same value): by key they replace their copies; without a key, they replace that value's rows.
    again = [] if key or state.cursor_value is None else [(cursor, state.cursor_value)]
    pending: pa.Table | None = None
    for batch in reads.batches(cursor, state.cursor_value, inclusive=state.cursor_value is not None):
        pending = batch if pending is None else _concat(pending, batch)
        ready, pending = _hold_last_value(pending, cursor)
        if ready.num_rows:
            with _transaction(con, source, name):
                _insert(con, name, ready, key, replace=again)
                _commit_state(con, state, cursor, ready)
            again = []
    if pending is not None and pending.num_rows:
        with _transaction(con, source, name):
            _insert(con, name, pending, key, replace=again)
            _commit_state(con, state, cursor, pending)
    return TableSync(source.key, name, state.source_table, "synced", reads.count, state.rows)


@dataclass
class _Reads:
    connector: Connector
    info: SourceTableInfo
    batch_size: int
    table: str
    on_batch: OnBatch | None
    count: int = 0

    def batches(self, cursor: str | None, after: Any, *, inclusive: bool) -> Iterable[pa.Table]:
        for batch in self.connector.read(self.info, cursor, after, inclusive=inclusive, batch_size=self.batch_size):
            self.count += batch.num_rows
            if self.on_batch is not None:
                self.on_batch(self.table, self.count)
            yield batch


def _concat(a: pa.Table, b: pa.Table) -> pa.Table:
    """Two batches as one; a column that came as text in one of them (SQLite) is text in both."""
    if a.schema != b.schema:
        for i, (fa, fb) in enumerate(zip(a.schema, b.schema, strict=True)):
            if fa.type != fb.type:
                a = a.set_column(i, fa.name, a.column(i).cast(pa.string()))
                b = b.set_column(i, fb.name, b.column(i).cast(pa.string()))
    return pa.concat_tables([a, b])


def _grouped(batches: Iterable[pa.Table], nbytes: int = _GROUP_BYTES) -> Iterator[pa.Table]:
    """Batches joined up to about `nbytes`: one INSERT each, where a full copy (one transaction) needs no more."""
    group: pa.Table | None = None
    for batch in batches:
        group = batch if group is None else _concat(group, batch)
        if group.nbytes >= nbytes:
            yield group
            group = None
    if group is not None:
        yield group


def _hold_last_value(t: pa.Table, cursor: str) -> tuple[pa.Table, pa.Table]:
    """(rows before the last cursor value, rows with it): the latter may continue in the next batch."""
    col = t.column(cursor)
    last = col[-1].as_py()
    i = t.num_rows - 1
    while i >= 0 and col[i].as_py() == last:
        i -= 1
    return t.slice(0, i + 1), t.slice(i + 1)


class _transaction:
    """BEGIN ... COMMIT, rolled back on any error; a warehouse error becomes a SyncError naming the table."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source: Source, table: str):
        self.con, self.source, self.table = con, source, table

    def __enter__(self) -> None:
        self.con.begin()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if kind is None:
            self.con.commit()
            return
        self.con.rollback()
        if isinstance(exc, duckdb.Error):
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SyncError(msg("source '{source}', table {table}: the rows could not be written to the warehouse: "
                                "{reason}. Nothing of this batch was written; the table keeps its previous rows. "
                                "Fix: correct the value in the source table (its column type says what it must "
                                "hold).", source=self.source.key, table=self.table, reason=reason)) from None


def _commit_state(con: duckdb.DuckDBPyConnection, state: SyncState, cursor: str | None, rows: pa.Table | None) -> None:
    if cursor is not None and rows is not None and rows.num_rows:
        state.cursor_value = rows.column(cursor)[-1].as_py()
    counted = con.execute(f"SELECT count(*) FROM main.{quote_ident(state.table_name)}").fetchall()
    state.rows = int(counted[0][0])
    state.synced_at = _now()
    state.status, state.error = "ok", None
    write_state(con, state)
    # A table that a file load once filled is now the sync's: drop the loader's bookkeeping, so metrics do
    # not take the table's old version for its current one.
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'kpilot' AND table_name = 'loads' "
                   "AND database_name = current_database()").fetchall()[0][0]:
        con.execute("DELETE FROM kpilot.loads WHERE table_name = ?", [state.table_name])


def _create(con: duckdb.DuckDBPyConnection, name: str, info: SourceTableInfo) -> None:
    table = f"main.{quote_ident(name)}"
    con.execute(f"DROP TABLE IF EXISTS {table}")
    # Types come from the connector's mapping (or a DuckDB file's own catalog), never from row values.
    columns = ", ".join(f"{quote_ident(c.name)} {c.type}" for c in info.columns)
    con.execute(f"CREATE TABLE {table} ({columns})")


def _insert(con: duckdb.DuckDBPyConnection, name: str, batch: pa.Table, key: Sequence[str],
            replace: Sequence[tuple[str, Any]] = ()) -> None:
    """Add a batch; rows with the batch's primary keys, or the rows `replace` matches, are deleted first."""
    table = f"main.{quote_ident(name)}"
    con.register(_BATCH, batch)
    try:
        for column, value in replace:
            con.execute(f"DELETE FROM {table} WHERE {quote_ident(column)} = ?", [value])
        if key:
            match = " AND ".join(f"t.{quote_ident(k)} = b.{quote_ident(k)}" for k in key)
            con.execute(f"DELETE FROM {table} t USING {_BATCH} b WHERE {match}")
        columns = ", ".join(quote_ident(n) for n in batch.column_names)
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_BATCH}")
    finally:
        # In an aborted transaction the unregistering fails too; the error that aborted it is the one to tell.
        with contextlib.suppress(duckdb.Error):
            con.unregister(_BATCH)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
