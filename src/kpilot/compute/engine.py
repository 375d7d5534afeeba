"""Engines run the SQL the compiler generates, where the data lives.

An engine is small on purpose (the `SqlClient` idea of metricflow): a dialect name for SQLGlot,
a way to run a query and get Arrow back, and the columns of a table. DuckDB is the default.
"""

from __future__ import annotations

import errno
import os
import random
import re
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from kpilot.model.errors import KpilotError, Message, msg


class Engine(Protocol):
    dialect: str
    # The tables a compiled query may read ("schema.name" or "name"); None: the engine's own tables().
    allowed_tables: frozenset[str] | None

    def query(self, sql: exp.Expr | str) -> pa.Table: ...

    def columns(self, table: str) -> dict[str, str]: ...

    def tables(self) -> list[str]: ...


class EngineError(KpilotError):
    """A query failed in the engine; the message carries the engine's reason and the SQL."""


class WarehouseDamaged(KpilotError):
    """The warehouse file cannot be read back: truncated, or corrupt."""


_DAMAGE = ("corrupt", "checksum", "could not read enough bytes", "not a valid duckdb", "invalid magic",
           "failed to deserialize", "no more data")
_FULL = ("no space left on device", "disk quota exceeded", "file too large")


def is_damage(exc: BaseException) -> bool:
    """Whether an engine error says the warehouse file is damaged (not full, not busy)."""
    return isinstance(exc, WarehouseDamaged) or (
        isinstance(exc, duckdb.Error) and any(w in str(exc).lower() for w in _DAMAGE))


def storage_problem(exc: BaseException, path: Path | str | None = None) -> Message | None:
    """What a storage failure means for people, with the fix (a full disk, a damaged warehouse); None for other
    errors. `path`: the warehouse, when known."""
    text = str(exc).lower()
    if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)) or any(
            w in text for w in _FULL):
        named = re.search(r'"(/[^"]+)"', str(exc))
        where = str(path or getattr(exc, "filename", None) or (named.group(1) if named else "")) or None
        if where is None:
            return msg("the disk is full. Fix: free some space on the disk of the workspace's state folder, then "
                       "run the command again; what was being written was not kept, the previous data was.")
        return msg("the disk is full (writing {path}). Fix: free some space on that disk, then run the command "
                   "again; what was being written was not kept, the previous data was.", path=where)
    if isinstance(exc, duckdb.Error) and any(w in text for w in _DAMAGE):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if path is None:
            return msg("the workspace's warehouse is damaged ({reason}). Fix: run `kpilot load --force`: it sets the "
                       "damaged file aside and rebuilds the warehouse from the sources (then `kpilot sync` for "
                       "database sources).", reason=first)
        return msg("the warehouse {path} is damaged ({reason}). Fix: run `kpilot load --force`: it sets the damaged "
                   "file aside and rebuilds the warehouse from the sources (then `kpilot sync` for database sources).",
                   path=str(path), reason=first)
    return None


def check_emitted(text: str, dialect: str, tables: Collection[str]) -> None:
    """The SQL about to run, read back in its dialect: one query that reads `tables` (or its own named
    subqueries) and nothing else: no table function, no file, no other schema's table, no statement.

    A second line of defence behind the expression allow-list: whatever a definition slipped past it, a query
    reaching outside the declared tables is refused here, before the engine sees it."""
    try:
        statements = sqlglot.parse(text, read=dialect)
    except (SqlglotError, RecursionError):
        raise EngineError(msg("kpilot refused to run a generated query it cannot read back; nothing was run.\n"
                              "SQL: {sql}", sql=text[:2000])) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise EngineError(msg("kpilot refused to run a generated query that is not one SELECT; nothing was run.\n"
                              "SQL: {sql}", sql=text[:2000]))
    tree = statements[0]
    named = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    allowed = {t.lower() for t in tables}
    for node in tree.walk():
        if isinstance(node, exp.Command | exp.DDL | exp.DML | exp.Unnest | exp.Set | exp.Pragma):
            bad = node.sql(dialect=dialect)[:200]
        elif isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                bad = node.sql(dialect=dialect)[:200]
            else:
                name = node.name.lower()
                full = f"{node.db.lower()}.{name}" if node.db else name
                if node.args.get("catalog") or (full not in allowed and (node.db or name not in named)):
                    bad = node.sql(dialect=dialect)[:200]
                else:
                    continue
        else:
            continue
        raise EngineError(msg(
            "kpilot refused to run a generated query that reads {what}, outside the workspace's tables; nothing was "
            "run. Check the definitions' `measure` and `filter`.", what=bad))


WAIT_ENV = "KPILOT_WAREHOUSE_WAIT"  # seconds to wait for a warehouse another process holds
DEFAULT_WAIT = 30.0


def lock_wait() -> float:
    """How long opening the warehouse waits while another process holds it: $KPILOT_WAREHOUSE_WAIT seconds,
    else 30 (read on each call; 0: do not wait)."""
    raw = os.environ.get(WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_WAIT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise KpilotError(msg("{env}={value} is not a number of seconds. Fix: set it to how long kpilot may wait for "
                              "the warehouse another process holds (e.g. 30; 0 not to wait), or unset it.",
                              env=WAIT_ENV, value=raw))
    return seconds


def lock_holder(reason: str) -> tuple[str | None, str | None]:
    """Who holds the warehouse, from DuckDB's lock error: (the kpilot command, e.g. 'serve', else None; the
    process for people: "`kpilot serve` (PID 123)", else the program DuckDB names, else None)."""
    found = re.search(r"held in (.*?) \(PID (\d+)\)", reason)
    if found is None:
        return None, None
    program, pid = found.group(1), found.group(2)
    try:
        argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    except OSError:  # not Linux, or the process is gone
        argv = []
    for i, arg in enumerate(argv):
        if arg == "kpilot.cli" or Path(arg).name == "kpilot":
            command = next((a for a in argv[i + 1:] if not a.startswith("-")), None)
            if command is not None:
                return command, f"`kpilot {command}` (PID {pid})"
    return None, f"{program} (PID {pid})"


def _busy(path: Path | str | None, reason: str, waited: float) -> KpilotError:
    """The warehouse still held by another process after waiting: who holds it, and what to do."""
    command, holder = lock_holder(reason)
    seconds = f"{waited:g}"
    if command == "serve":
        return KpilotError(msg(
            "the workspace's warehouse {path} is in use by the web server {holder}, which was still working after "
            "{seconds} s of waiting (it holds the warehouse only while it answers requests and loads changed files). "
            "Fix: run the command again in a moment; to wait longer, set {env} to a number of seconds.",
            path=str(path), holder=holder, seconds=seconds, env=WAIT_ENV))
    if holder is None:
        return KpilotError(msg(
            "the workspace's warehouse {path} is in use by another process, still after {seconds} s of waiting "
            "({reason}). Fix: let that process finish (or stop it), then run the command again; to wait longer, "
            "set {env} to a number of seconds.", path=str(path), seconds=seconds, reason=reason, env=WAIT_ENV))
    return KpilotError(msg(
        "the workspace's warehouse {path} is in use by {holder}, still after {seconds} s of waiting. Fix: let it "
        "finish (or stop it), then run the command again; to wait longer, set {env} to a number of seconds.",
        path=str(path), holder=holder, seconds=seconds, env=WAIT_ENV))


def connect_duckdb(path: Path | str | None, *, files: bool = False, read_only: bool = False,
                   wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with extension auto-install off (nothing is downloaded here).

    Sandboxed unless `files`: no access to files, the network or extensions beyond the database itself, and
    the configuration locked, so that no query can turn that back on. Only the file loader, which runs SQL
    kpilot writes itself, opens the warehouse with `files=True`, and closes it when done.

    A database file is held by one process at a time (DuckDB's file lock): while another process holds it,
    this waits, trying again with a growing pause, for `wait` seconds (default `lock_wait()`: 30 s, or
    $KPILOT_WAREHOUSE_WAIT), then says who holds it."""
    config: dict[str, str | bool | int | float | list[str]] = {"autoinstall_known_extensions": "false"}
    if files:
        config["autoload_known_extensions"] = "true"
    else:
        config.update({"autoload_known_extensions": "false", "enable_external_access": "false",
                       "lock_configuration": "true"})
    started = time.monotonic()
    patience: float | None = wait  # read from the environment at the first refusal only
    pause = 0.005
    while True:
        try:
            return duckdb.connect(str(path) if path else ":memory:", read_only=read_only, config=config)
        except duckdb.IOException as exc:
            reason = str(exc).splitlines()[0]
            problem = storage_problem(exc, path)
            if problem is not None:
                raise WarehouseDamaged(problem) from None
            if "lock" not in reason.lower():
                raise KpilotError(msg("cannot open the workspace database {path}: {reason}", path=str(path),
                                      reason=reason)) from None
            if patience is None:
                patience = lock_wait()
            waited = time.monotonic() - started
            if waited >= patience:
                raise _busy(path, reason, patience) from None
            # Short pauses first (the web server holds the warehouse for one request at a time), up to a
            # quarter of a second, with some jitter so that two waiting processes do not try in step.
            time.sleep(min(pause * random.uniform(0.75, 1.25), patience - waited))
            pause = min(pause * 2, 0.25)
        except duckdb.ConnectionException:
            # Another connection of this process holds the warehouse with the other access (file loader or
            # sandbox).
            raise KpilotError(msg("the workspace database {path} is busy in this process (a load and a query at "
                                  "the same time); try again in a moment", path=str(path))) from None


class DuckDBEngine:
    """The embedded default: runs in-process on the workspace's DuckDB file."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, allowed_tables: frozenset[str] | None = None):
        self.con = con
        self.allowed_tables = allowed_tables
        self._lock = threading.RLock()

    def query(self, sql: exp.Expr | str) -> pa.Table:
        """Run a compiled tree (checked by `check_emitted` first) or kpilot's own SQL text."""
        text = sql.sql(dialect=self.dialect) if isinstance(sql, exp.Expr) else sql
        if isinstance(sql, exp.Expr):
            if self.allowed_tables is None:
                self.allowed_tables = frozenset(self.tables())
            check_emitted(text, self.dialect, self.allowed_tables)
        with self._lock:
            try:
                return self.con.sql(text).to_arrow_table()
            except duckdb.Error as exc:
                if is_damage(exc):  # the file, not the query: say so, with the fix
                    raise WarehouseDamaged(storage_problem(exc) or msg("the warehouse is damaged")) from None
                first = str(exc).splitlines()[0]
                raise EngineError(msg("the engine rejected a generated query: {reason}\nSQL: {sql}", reason=first,
                                      sql=text)) from None

    def columns(self, table: str) -> dict[str, str]:
        with self._lock:
            rows = self.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
        return {name: typ for name, typ in rows}

    def tables(self) -> list[str]:
        with self._lock:
            rows = self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]


class MappedEngine:
    """An engine whose tables are named differently where they live (`orders` -> `sales.orders`).

    The compiler names a model's table as the workspace does; this rewrites those names in each compiled
    tree, so the same queries run on a database computing the tables in place. `columns` are the tables'
    columns as the source described them.
    """

    def __init__(self, inner: Engine, tables: Mapping[str, tuple[str, str]],
                 columns: Mapping[str, Mapping[str, str]]):
        self.inner = inner
        self.dialect = inner.dialect
        self._tables = dict(tables)
        self._columns = {t: dict(c) for t, c in columns.items()}
        # The inner engine may read these tables only, by the names they have where they live.
        mapped = frozenset(f"{schema}.{name}" if schema else name for schema, name in self._tables.values())
        self.allowed_tables: frozenset[str] | None = mapped
        inner.allowed_tables = mapped

    def _rename(self, node: exp.Expr) -> exp.Expr:
        if (isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) and not node.args.get("db")
                and node.name in self._tables):
            schema, name = self._tables[node.name]
            node = node.copy()
            node.set("this", exp.to_identifier(name, quoted=True))
            if schema:
                node.set("db", exp.to_identifier(schema, quoted=True))
        return node

    def query(self, sql: exp.Expr | str) -> pa.Table:
        return self.inner.query(sql.transform(self._rename) if isinstance(sql, exp.Expr) else sql)

    def columns(self, table: str) -> dict[str, str]:
        return dict(self._columns.get(table, {}))

    def tables(self) -> list[str]:
        return sorted(self._tables)
