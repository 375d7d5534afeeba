"""What was loaded from which file: the `kpilot.loads` table, file hashes and the change decision; and the
latest load that failed (`kpilot.load_failures`), so that reads can say their data is the last good one. Both
tables are declared, with the schema's version and migrations, by kpilot.warehouse."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from threading import Event
from typing import Any

import duckdb

from kpilot import warehouse
from kpilot.model.errors import Message, msg, verbatim
from kpilot.sources.files.common import LoadError, TableFile, duckdb_type, shown_path, unreadable

CHUNK = 1 << 20

_FIELDS = ("table_name", "path", "size", "mtime_ns", "sha256", "rows", "version", "change", "append_min",
           "columns", "loaded_at")


@dataclass
class LoadRecord:
    """One row of kpilot.loads: the file a table was last loaded from, and the result."""

    table_name: str
    path: str
    size: int
    mtime_ns: int
    sha256: str
    rows: int
    version: int
    change: str  # 'replace' | 'append'
    append_min: str | None  # JSON: column -> ISO min over the appended rows
    columns: dict[str, str]
    loaded_at: datetime

    def values(self) -> list[Any]:
        return [self.table_name, self.path, self.size, self.mtime_ns, self.sha256, self.rows, self.version,
                self.change, self.append_min, json.dumps(self.columns), self.loaded_at]


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'kpilot' AND table_name = ? "
        "AND database_name = current_database()", [name]
    ).fetchall()
    return bool(rows and rows[0][0])


def read_records(con: duckdb.DuckDBPyConnection) -> dict[str, LoadRecord]:
    """Every row of kpilot.loads by table name (empty when nothing was ever loaded)."""
    if not _has_table(con, "loads"):
        return {}
    rows = con.execute(f"SELECT {', '.join(_FIELDS)} FROM kpilot.loads").fetchall()
    out = {}
    for r in rows:
        rec = LoadRecord(*r)
        rec.columns = json.loads(r[9])
        out[rec.table_name] = rec
    return out


def write_records(con: duckdb.DuckDBPyConnection, records: list[LoadRecord]) -> None:
    if records:
        marks = ", ".join("?" for _ in _FIELDS)
        con.executemany(f"INSERT OR REPLACE INTO kpilot.loads VALUES ({marks})", [r.values() for r in records])


# --- the latest failed load ----------------------------------------------------------------------

_ALL_SOURCES = ""  # the scope of a load of every source


@dataclass(frozen=True)
class LoadFailure:
    """A load that failed and changed nothing: when (UTC), why (for people), and of which source (None: all)."""

    failed_at: datetime
    message: Message
    source: str | None


def record_failure(con: duckdb.DuckDBPyConnection, source: str | None, message: str, at: datetime) -> LoadFailure:
    """Remember that the load of `source` (None: of every source) failed at `at` (aware), replacing the
    previous failure of that load. Outside the load's transaction, which was rolled back."""
    failure = LoadFailure(at.astimezone(UTC), message if isinstance(message, Message) else verbatim(message), source)
    warehouse.ensure_schema(con)
    con.execute("INSERT OR REPLACE INTO kpilot.load_failures VALUES (?, ?, ?)",
                [source or _ALL_SOURCES, failure.failed_at.replace(tzinfo=None),
                 json.dumps(_message_json(failure.message))])
    return failure


def clear_failures(con: duckdb.DuckDBPyConnection, source: str | None) -> None:
    """Forget the failure of the load of `source` after it succeeded; a load of every source forgets them all."""
    if not _has_table(con, "load_failures"):
        return
    if source is None:
        con.execute("DELETE FROM kpilot.load_failures")
    else:
        con.execute("DELETE FROM kpilot.load_failures WHERE scope = ?", [source])


def last_failure(con: duckdb.DuckDBPyConnection) -> LoadFailure | None:
    """The latest failed load that no load has made good since, or None."""
    if not _has_table(con, "load_failures"):
        return None
    rows = con.execute("SELECT scope, failed_at, message FROM kpilot.load_failures "
                       "ORDER BY failed_at DESC, scope LIMIT 1").fetchall()
    if not rows:
        return None
    scope, at, text = rows[0]
    return LoadFailure(at.replace(tzinfo=UTC), _message(json.loads(text)), scope or None)


def _message_json(m: Message) -> dict[str, Any]:
    """A message as JSON: its English template and its parameters, nested messages included."""
    params = {k: _message_json(v) if isinstance(v, Message) else v if isinstance(v, int | float | None) else str(v)
              for k, v in m.params.items()}
    return {"template": m.template, "params": params}


def _message(data: dict[str, Any]) -> Message:
    params = {k: _message(v) if isinstance(v, dict) else v for k, v in data["params"].items()}
    return Message(data["template"], **params)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
        "AND database_name = current_database() ORDER BY column_index",
        [table],
    ).fetchall()
    return {r[0]: r[1] for r in rows}


# --- hashing and the change decision ------------------------------------------------------------


def _sha(path: Path, h: Any = None, start: int = 0, stop: int | None = None, cancel: Event | None = None) -> Any:
    """sha256 of the bytes [start, stop) of the file, continuing `h` when given."""
    h = h if h is not None else hashlib.sha256()
    buffer = memoryview(bytearray(CHUNK))  # read into one buffer: no new bytes object per chunk
    with path.open("rb", buffering=0) as f:
        f.seek(start)
        left = None if stop is None else stop - start
        while (left is None or left > 0) and not (cancel and cancel.is_set()):
            got = f.readinto(buffer if left is None or left >= CHUNK else buffer[:left])
            if not got:
                break
            h.update(buffer[:got])
            if left is not None:
                left -= got
    return h


def full_sha(path: Path, cancel: Event | None = None) -> str:
    return str(_sha(path, cancel=cancel).hexdigest())


def background_sha(path: Path, cancel: Event | None = None) -> str:
    """full_sha, run beside DuckDB's load of the same file.

    At the normal CPU priority: at the lowest one it got no CPU while DuckDB's threads were busy, so the load
    waited for it afterwards with a core idle. Sharing the cores, it mostly ends with the read (hashlib
    releases the GIL on large updates).
    """
    return full_sha(path, cancel)


def stat_file(tf: TableFile) -> os.stat_result:
    """The file's size and mtime; a LoadError when it is gone, is no longer a file or cannot be read."""
    try:
        st = tf.path.stat()
    except FileNotFoundError:
        raise LoadError(msg("{path} not found (it was there when the source was listed). Fix: put the file back, or "
                            "run the command again to list the source's files anew.", path=shown_path(tf))) from None
    except OSError as e:
        raise LoadError(unreadable(tf, e)) from None
    if not stat.S_ISREG(st.st_mode):
        raise LoadError(msg("{path} is not a file any more (a folder or a device has its name). Fix: put the data "
                            "file back, or run the command again to list the source's files anew.",
                            path=shown_path(tf)))
    return st


def check_unchanged(change: Change) -> None:
    """Refuse a load whose file changed after it was compared: what was read may be half old, half new."""
    st = stat_file(change.tf)
    if (st.st_size, st.st_mtime_ns) != (change.size, change.mtime_ns):
        raise LoadError(msg("{path} changed while it was being loaded; run the load again (once the program writing "
                            "it has finished).", path=shown_path(change.tf)))


@dataclass
class Change:
    """What to do with one table: 'unchanged', 'touch' (same bytes, new mtime), 'append' or 'replace'."""

    tf: TableFile
    action: str
    size: int
    mtime_ns: int
    prev: LoadRecord | None
    sha: str | Future[str]

    def sha256(self) -> str:
        return self.sha if isinstance(self.sha, str) else self.sha.result()


def _declared_changed(prev: LoadRecord, declared: Mapping[str, str] | None, where_: str) -> bool:
    have = {k.lower(): v for k, v in prev.columns.items()}
    return any(have.get(col.lower(), "") != duckdb_type(t, where_) for col, t in (declared or {}).items())


def _same_table(tf: TableFile, prev: LoadRecord | None, table_exists: bool,
                declared: Mapping[str, str] | None) -> bool:
    """Whether the table was loaded from this path with these declared types (its bytes aside)."""
    return (prev is not None and table_exists and prev.path == str(tf.path)
            and not _declared_changed(prev, declared, shown_path(tf)))


def unchanged(tf: TableFile, prev: LoadRecord | None, *, table_exists: bool,
              declared: Mapping[str, str] | None) -> bool:
    """Whether the file is the one loaded last (same path, size and modification time, same declared types)."""
    if prev is None or not _same_table(tf, prev, table_exists, declared):
        return False
    st = stat_file(tf)
    return st.st_size == prev.size and st.st_mtime_ns == prev.mtime_ns


def decide(
    tf: TableFile,
    prev: LoadRecord | None,
    *,
    force: bool,
    table_exists: bool,
    declared: Mapping[str, str] | None,
    pool: Executor,
    stop: Event | None = None,
) -> Change:
    """Compare the file with what was loaded from it: unchanged, same bytes, appended lines, or new content."""
    st = stat_file(tf)
    size, mtime = st.st_size, st.st_mtime_ns

    def replace(sha: str | Future[str] | None = None) -> Change:
        # Hashing a big file costs about as much as reading it: do it while DuckDB loads the file.
        return Change(tf, "replace", size, mtime, prev, sha or pool.submit(background_sha, tf.path, stop))

    if prev is None or force or not _same_table(tf, prev, table_exists, declared):
        return replace()
    if size == prev.size and mtime == prev.mtime_ns:
        return Change(tf, "unchanged", size, mtime, prev, prev.sha256)
    if size == prev.size:
        sha = full_sha(tf.path)
        return Change(tf, "touch" if sha == prev.sha256 else "replace", size, mtime, prev, sha)
    # After a load that gave no rows (a header alone), the new lines are loaded afresh, so that the column
    # types are detected from them instead of staying the text types of an empty table.
    if size > prev.size and tf.source.type == "csv" and prev.size > 0 and prev.rows > 0:
        with tf.path.open("rb") as f:
            f.seek(prev.size - 1)
            ends_line = f.read(1) == b"\n"
        if ends_line:
            h = _sha(tf.path, stop=prev.size)
            if h.hexdigest() == prev.sha256:
                return Change(tf, "append", size, mtime, prev, str(_sha(tf.path, h, prev.size).hexdigest()))
    return replace()
