"""File sources (CSV, Excel, Parquet): find a source's files and load them into DuckDB, all or nothing.

Data tables land in DuckDB's `main` schema; what was loaded from which file is kept in
`kpilot.loads`, so that unchanged files are skipped and grown CSV files only have their new lines read.
A file that would empty its table, or leave it less than half its rows, is refused unless allowed: an
export cut short must not blank the board.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from kpilot import warehouse
from kpilot.compute.engine import WarehouseDamaged, is_damage, storage_problem
from kpilot.model.errors import Message, did_you_mean, either, joined, msg, one_of, verbatim
from kpilot.model.types import INTEGER_TYPES
from kpilot.model.validate import is_temporal
from kpilot.model.workspace import FILE_SOURCE_TYPES, Source
from kpilot.sources import paths
from kpilot.sources.base import main_tables, quote_ident
from kpilot.sources.files.common import (
    NOTHING_LOADED,
    LoadError,
    TableFile,
    duckdb_type,
    missing_columns,
    no_sheet,
    scratch,
    shown_path,
    table_name,
    unreadable,
    where,
)
from kpilot.sources.files.csv import CsvPlan, EncodingRetry, diagnose, plan_append, plan_csv, read_into
from kpilot.sources.files.excel import data_sheet_names, read_sheet, sheet_names, sniff_sheet
from kpilot.sources.files.state import (
    Change,
    LoadFailure,
    LoadRecord,
    check_unchanged,
    decide,
    read_records,
    table_columns,
    unchanged,
    write_records,
)

SUFFIXES = {"csv": (".csv", ".tsv"), "excel": (".xlsx", ".xlsm"), "parquet": (".parquet", ".pq")}


@dataclass
class TableLoad:
    """What happened to one table: 'loaded' (replaced), 'appended' or 'unchanged'."""

    table: str
    path: Path
    status: str
    rows: int
    seconds: float
    version: int


@dataclass
class LoadReport:
    """The tables of a load; `failure` when it failed and changed nothing, the last good data answering."""

    tables: list[TableLoad]
    failure: LoadFailure | None = None


# --- discovery ----------------------------------------------------------------------------------


def discover(source: Source, base_dir: Path) -> list[TableFile]:
    """Files of a file source, one TableFile per table (per sheet for Excel).

    `source.path` is relative to `base_dir` (the workspace folder): a folder (one table per file of the
    source's type, named after the file, or after each sheet for Excel workbooks) or a single file.
    `source.file_tables` (table -> file, or -> sheet for one workbook) lists exactly the tables to load.
    """
    if source.type not in FILE_SOURCE_TYPES:
        raise LoadError(msg("source '{source}' is of type {type}, not a file source ({types}).", source=source.key,
                            type=source.type, types=", ".join(FILE_SOURCE_TYPES)))
    if not source.path:
        raise LoadError(msg("source '{source}' has no `path:`. Fix: give the file or folder to read, relative to "
                            "the workspace folder, e.g. `path: data/`.", source=source.key))
    root = Path(base_dir, source.path).absolute()
    if not root.exists():
        near = [p.name for p in root.parent.iterdir()] if root.parent.is_dir() else []
        raise LoadError(msg(
            "source '{source}': '{path}' not found; paths are relative to the workspace folder, so kpilot looked "
            "for {root}.{hint} Fix: correct `path:` or move the data there.", source=source.key, path=source.path,
            root=str(root), hint=did_you_mean(root.name, near)))
    if not paths.readable(root, base_dir):
        raise LoadError(paths.outside(source.key, source.path, base_dir))
    found = _list_tables(source, root)
    for tf in found:  # a link inside the folder may lead elsewhere
        if not paths.readable(tf.path, base_dir):
            raise LoadError(paths.outside(source.key, tf.path, base_dir))
    _one_file_per_table(found, source.key)
    if not found:
        raise LoadError(msg("source '{source}': folder '{path}' holds no {kinds} file. Fix: put the data files "
                            "there, or correct `path:` or `type:`.", source=source.key, path=source.path,
                            kinds=either([f"*{s}" for s in SUFFIXES[source.type]])))
    return found


def _one_file_per_table(files: Sequence[TableFile], source: str | None = None) -> None:
    """Refuse two files for one table: within a source when it is listed, across sources when they load."""
    seen: dict[str, TableFile] = {}
    for tf in files:
        other = seen.get(tf.table)
        if other is None:
            seen[tf.table] = tf
        elif source is not None:
            raise LoadError(msg(
                "source '{source}': table '{table}' would come from both {first} and {second}. Fix: name the "
                "tables yourself with `tables:` (table: file or sheet) on the source.", source=source,
                table=tf.table, first=_label(other), second=_label(tf)))
        else:
            raise LoadError(msg("table '{table}' would be loaded from both {first} and {second}. Fix: give one of "
                                "them another name with `tables:` on its source.", table=tf.table,
                                first=_label(other), second=_label(tf)))


def _label(tf: TableFile) -> Message:
    if tf.sheet is not None:
        return msg("{path} (sheet {sheet})", path=shown_path(tf), sheet=tf.sheet)
    return verbatim(shown_path(tf))


def _list_tables(source: Source, root: Path) -> list[TableFile]:
    suffixes = SUFFIXES[source.type]
    if root.is_dir():
        files = sorted(p for p in root.iterdir()
                       if p.is_file() and p.name.lower().endswith(suffixes) and not p.name.startswith((".", "~$")))
        if source.file_tables:
            names = [p.name for p in files]
            out = []
            for table, name in source.file_tables.items():
                path = root / name
                if not path.is_file():
                    raise LoadError(msg("source '{source}': table '{table}' names file '{name}', which is not in "
                                        "'{path}';{hint} files: {files}.", source=source.key, table=table, name=name,
                                        path=source.path, hint=did_you_mean(name, names), files=one_of(names)))
                out.append(_one_file_table(source, table, path))
            return out
        if source.type != "excel":
            return [TableFile(table_name(_stem(p)), p, source) for p in files]
        if source.sheet:
            return [_one_file_table(source, table_name(_stem(p)), p) for p in files]
        return [TableFile(table_name(s), p, source, s) for p in files for s in _data_sheets(source, p)]
    if source.type != "excel":
        if source.file_tables:
            if len(source.file_tables) != 1 or next(iter(source.file_tables.values())) != root.name:
                raise LoadError(msg("source '{source}': `path:` is the single file '{path}', so `tables:` can only "
                                    "name it once, e.g. `tables: {{my_table: {name}}}`.", source=source.key,
                                    path=source.path, name=root.name))
            return [TableFile(next(iter(source.file_tables)), root, source)]
        return [TableFile(table_name(_stem(root)), root, source)]
    if source.file_tables:
        sheets = _sheets(source, root)
        return [TableFile(t, root, source, _sheet(source, root, sheets, s)) for t, s in source.file_tables.items()]
    if source.sheet:
        sheets = _sheets(source, root)
        return [TableFile(table_name(source.sheet), root, source, _sheet(source, root, sheets, source.sheet))]
    return [TableFile(table_name(s), root, source, s) for s in _data_sheets(source, root)]


def _stem(p: Path) -> str:
    return p.name[: -len(p.suffix)] if p.suffix else p.name


def _sheets(source: Source, path: Path) -> list[str]:
    return sheet_names(path, shown_path(TableFile("", path, source)))


def _data_sheets(source: Source, path: Path) -> list[str]:
    """The sheets to load when a source reads every sheet: empty ones (Excel's blank "Sheet1") are skipped."""
    return data_sheet_names(path, shown_path(TableFile("", path, source)), source.key)


def _sheet(source: Source, path: Path, sheets: list[str], name: str) -> str:
    if name in sheets:
        return name
    raise no_sheet(shown_path(TableFile("", path, source)), name, sheets, source.key)


def _one_file_table(source: Source, table: str, path: Path) -> TableFile:
    if source.type != "excel":
        return TableFile(table, path, source)
    sheets = _sheets(source, path)
    return TableFile(table, path, source, _sheet(source, path, sheets, source.sheet or sheets[0]))


# --- column types without loading -----------------------------------------------------------------


def sniff_columns(tf: TableFile) -> dict[str, str]:
    """Column name -> DuckDB type, from a sample, with the same options as a load."""
    if tf.source.type == "excel":
        return sniff_sheet(tf)
    if tf.source.type == "parquet":
        return _parquet_columns(tf)
    with tempfile.TemporaryDirectory(prefix="kpilot-sniff-") as tmp:
        try:
            plan = plan_csv(tf, Path(tmp), sample_only=True)
        except EncodingRetry as retry:
            plan = plan_csv(tf, Path(tmp), sample_only=True, codec=retry.codec)
    return {k: c.type for k, c in plan.columns.items()}


def _parquet_columns(tf: TableFile) -> dict[str, str]:
    with scratch() as con:
        try:
            rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(tf.path)]).fetchall()
        except duckdb.Error as e:
            raise _parquet_error(tf, e) from None
    return {r[0]: r[1] for r in rows}


def _parquet_error(tf: TableFile, e: duckdb.Error) -> LoadError:
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return LoadError(msg("{where} could not be read as Parquet ({reason}). Fix: export the file again as Parquet; "
                         "a file cut short by a copy in progress also gives this error.", where=where(tf),
                         reason=first))


# --- loading ------------------------------------------------------------------------------------


@dataclass
class _Job:
    change: Change
    columns: list[str]  # column names the load will produce, for the required-columns check
    csv: CsvPlan | None = None
    arrow: pa.Table | None = None
    parquet_casts: dict[str, str] | None = None


def nothing_to_load(con: duckdb.DuckDBPyConnection, files: Sequence[TableFile], *, force: bool = False,
                    declared: Mapping[str, Mapping[str, str]] | None = None) -> LoadReport | None:
    """The report of a load that would read no file (every file unchanged), or None when there is work: read
    from the bookkeeping without opening a file in DuckDB, so with the warehouse's sandboxed connection."""
    if force:
        return None
    records, existing = read_records(con), main_tables(con)
    out = []
    for tf in files:
        prev = records.get(tf.table)
        if prev is None or not unchanged(tf, prev, table_exists=tf.table in existing,
                                         declared=(declared or {}).get(tf.table)):
            return None
        out.append(TableLoad(tf.table, tf.path, "unchanged", prev.rows, 0.0, prev.version))
    return LoadReport(out)


def load_tables(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[TableFile],
    *,
    required: Mapping[str, Mapping[str, str]] | None = None,
    declared: Mapping[str, Mapping[str, str]] | None = None,
    force: bool = False,
    allow_shrink: bool = False,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> LoadReport:
    """Load the files into `main`, in one transaction: every table is updated, or none is.

    `required` (table -> column -> why it is needed) and `declared` (table -> column -> type) are
    checked before anything is written. Unchanged files are skipped; a CSV file that only grew has its
    new lines appended. A file that would empty a loaded table or leave it less than half its rows fails the
    load, unless `allow_shrink`. `con` must not be inside a transaction. Raises LoadError, whose text is for
    people.
    """
    _one_file_per_table(files)
    codecs: dict[str, str] = {}
    stop = threading.Event()  # tells background hashing to give up once the load has failed
    with tempfile.TemporaryDirectory(prefix="kpilot-load-") as tmp, ThreadPoolExecutor(1) as pool:
        try:
            # A file whose encoding was guessed wrong is read again, transcoded: at most twice per file.
            for _ in range(2 * len(files) + 1):
                try:
                    return _load_once(con, files, required or {}, declared or {}, force, allow_shrink, on_progress,
                                      codecs, Path(tmp), pool, stop)
                except EncodingRetry as retry:
                    if codecs.get(retry.tf.table) == retry.codec:
                        raise LoadError(msg("{where}: could not be read as {codec} text either. Fix: declare its "
                                            "`encoding:` on the source.", where=where(retry.tf),
                                            codec=retry.codec)) from None
                    codecs[retry.tf.table] = retry.codec
        except LoadError as e:
            stop.set()
            raise LoadError(joined("\n", [e.message, NOTHING_LOADED])) from None
        except BaseException:
            stop.set()
            raise
    raise AssertionError("unreachable")


def _load_once(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[TableFile],
    required: Mapping[str, Mapping[str, str]],
    declared: Mapping[str, Mapping[str, str]],
    force: bool,
    allow_shrink: bool,
    on_progress: Callable[[str, int, int], None] | None,
    codecs: Mapping[str, str],
    workdir: Path,
    pool: ThreadPoolExecutor,
    stop: threading.Event,
) -> LoadReport:
    con.execute("BEGIN TRANSACTION")
    current: _Job | None = None
    tf: TableFile | None = None  # the file being read, for an operating system error
    try:
        warehouse.ensure_schema(con)
        records = read_records(con)
        existing = main_tables(con)
        jobs = []
        problems: list[Message] = []
        for tf in files:
            change = decide(tf, records.get(tf.table), force=force, table_exists=tf.table in existing,
                            declared=declared.get(tf.table), pool=pool, stop=stop)
            job = _plan(change, declared.get(tf.table), codecs.get(tf.table), workdir)
            problems += missing_columns(tf, job.columns, required.get(tf.table), declared.get(tf.table))
            jobs.append(job)
        if problems:
            raise LoadError(joined("\n", problems))
        loads: list[TableLoad] = []
        new_records: list[LoadRecord] = []
        for i, job in enumerate(jobs, start=1):
            current, tf = job, job.change.tf
            started = time.perf_counter()
            loads.append(_run(con, job, new_records))
            loads[-1].seconds = time.perf_counter() - started
            if on_progress:
                on_progress(job.change.tf.table, i, len(jobs))
        current = None
        if not allow_shrink:
            refused = [m for job, done in zip(jobs, loads, strict=True)
                       if (m := _shrink(job.change, done.rows, job.change.tf.table in existing)) is not None]
            if refused:
                raise LoadError(joined("\n", refused))
        by_table = {j.change.tf.table: j.change for j in jobs}
        for rec in new_records:
            change = by_table[rec.table_name]
            tf = change.tf
            rec.sha256 = change.sha256()
            # What was read and hashed must be the file that was compared: a file that grew meanwhile
            # would have its new lines appended again by the next load.
            check_unchanged(change)
        write_records(con, new_records)
        con.execute("COMMIT")
        return LoadReport(loads)
    except BaseException as e:
        with contextlib.suppress(duckdb.Error):  # a failed rollback must not hide why the load failed
            con.execute("ROLLBACK")
        if isinstance(e, duckdb.Error) and current is not None:
            raise _explain(current, e) from None
        problem = storage_problem(e) if isinstance(e, OSError | duckdb.Error) else None
        if problem is not None:
            raise (WarehouseDamaged(problem) if is_damage(e) else LoadError(problem)) from None
        if isinstance(e, OSError) and tf is not None:
            raise LoadError(unreadable(tf, e)) from None
        raise


def _shrink(change: Change, rows: int, table_exists: bool) -> Message | None:
    """Why a load leaving `rows` rows may not replace the table, or None: it would empty the table or remove
    more than half of its rows (an export cut short or wrongly filtered). A first load is never refused."""
    before = change.prev.rows if change.prev is not None and table_exists else 0
    if 2 * rows >= before:
        return None
    tf = change.tf
    if rows == 0:
        return msg("{where} holds no rows now; loading it would empty table '{table}', which holds {before} row(s). "
                   "Fix: check the export that wrote the file (was it cut short, or filtered?); if the table is "
                   "meant to be empty, run `kpilot load --allow-shrink`.", where=where(tf), table=tf.table,
                   before=before)
    return msg("{where} holds {rows} row(s) where table '{table}' holds {before}: loading it would remove more "
               "than half of the table. Fix: check the export that wrote the file (was it cut short, or filtered?); "
               "if the shrink is intended, run `kpilot load --allow-shrink`.", where=where(tf), rows=rows,
               table=tf.table, before=before)


def _explain(job: _Job, e: duckdb.Error) -> LoadError | EncodingRetry:
    tf = job.change.tf
    problem = storage_problem(e)  # a full disk or a damaged warehouse: not the file's fault
    if problem is not None:
        raise WarehouseDamaged(problem) if is_damage(e) else LoadError(problem)
    if job.csv is not None:
        return diagnose(job.csv, e)
    if job.parquet_casts:
        return _parquet_cast_error(tf, job.parquet_casts) or _parquet_error(tf, e)
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return LoadError(msg("{where}: could not be loaded ({reason}).", where=where(tf), reason=first))


def _plan(change: Change, declared: Mapping[str, str] | None, codec: str | None, workdir: Path) -> _Job:
    """Read everything that can be checked before writing: dialect, types, the columns a load will give."""
    tf, prev = change.tf, change.prev
    if change.action in ("unchanged", "touch"):
        assert prev is not None
        return _Job(change, list(prev.columns))
    # Types of the previous load guide this one when it read the same kind of file and gave rows: an empty
    # table's columns are text for want of values, not because the file holds text.
    same_kind = prev is not None and prev.path.lower().endswith(SUFFIXES[tf.source.type])
    previous = prev.columns if prev is not None and same_kind and prev.rows > 0 else None
    if tf.source.type == "excel":
        arrow, _ = read_sheet(tf, previous=previous, declared=declared)
        return _Job(change, list(arrow.column_names), arrow=arrow)
    if tf.source.type == "parquet":
        cols = _parquet_columns(tf)
        have = {c.lower(): c for c in cols}
        casts = {have[k.lower()]: duckdb_type(t, where(tf)) for k, t in (declared or {}).items() if k.lower() in have}
        casts = {c: t for c, t in casts.items() if cols[c] != t}
        lossy = _parquet_cast_error(tf, casts, cols, only_fractions=True)
        if lossy is not None:
            raise lossy
        return _Job(change, list(cols), parquet_casts=casts)
    plan = plan_csv(tf, workdir, previous=previous, declared=declared, codec=codec)
    if change.action == "append":
        assert prev is not None  # same bytes up to the old size, so the same header and columns
        plan = plan_append(tf, workdir, plan, prev.columns, prev.size)
    return _Job(change, list(plan.columns), csv=plan)


def _run(con: duckdb.DuckDBPyConnection, job: _Job, records: list[LoadRecord]) -> TableLoad:
    ch = job.change
    tf, prev = ch.tf, ch.prev
    target = "main." + quote_ident(tf.table)
    if ch.action in ("unchanged", "touch"):
        assert prev is not None
        if ch.action == "touch":
            records.append(LoadRecord(**{**prev.__dict__, "mtime_ns": ch.mtime_ns}))
        return TableLoad(tf.table, tf.path, "unchanged", prev.rows, 0.0, prev.version)
    append_min = None
    if ch.action == "append":
        assert job.csv is not None and prev is not None
        for column in read_into(con, "_kpilot_append", job.csv, temp=True):
            if prev.columns.get(column) in INTEGER_TYPES:
                # New lines hold a decimal in a column of whole numbers: the column becomes DOUBLE, as a
                # load of the whole file would make it, inside this transaction.
                con.execute(f"ALTER TABLE {target} ALTER {quote_ident(column)} TYPE DOUBLE")
        append_min = _mins(con, "_kpilot_append", prev.columns)
        con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM _kpilot_append")
        con.execute("DROP TABLE _kpilot_append")
    elif job.csv is not None:
        read_into(con, target, job.csv)
    elif job.arrow is not None:
        con.register("_kpilot_arrow", job.arrow)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM _kpilot_arrow")
        finally:
            con.unregister("_kpilot_arrow")
    else:
        casts = job.parquet_casts or {}
        select = "*"
        if casts:
            # Types come from duckdb_type() (a fixed list), names are quoted: nothing from a file is pasted.
            select += " REPLACE (" + ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}"
                                               for c, t in casts.items()) + ")"
        con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT {select} FROM read_parquet(?)", [str(tf.path)])
    row = con.execute(f"SELECT count(*) FROM {target}").fetchone()
    rows = int(row[0]) if row else 0
    version = prev.version + 1 if prev else 1
    records.append(LoadRecord(
        tf.table, str(tf.path), ch.size, ch.mtime_ns, "", rows, version,
        "append" if ch.action == "append" else "replace", append_min, table_columns(con, tf.table),
        datetime.now(UTC).replace(tzinfo=None),
    ))
    return TableLoad(tf.table, tf.path, "appended" if ch.action == "append" else "loaded", rows, 0.0, version)


def _mins(con: duckdb.DuckDBPyConnection, table: str, columns: Mapping[str, str]) -> str:
    """JSON of the smallest value of each date/timestamp column of `table`, as ISO text."""
    temporal = [c for c, t in columns.items() if is_temporal(t)]
    if not temporal:
        return "{}"
    row = con.execute(f"SELECT {', '.join(f'min({quote_ident(c)})' for c in temporal)} FROM {table}").fetchone()
    assert row is not None
    return json.dumps({c: _iso(v) for c, v in zip(temporal, row, strict=True)})


def _iso(v: Any) -> str | None:
    if isinstance(v, datetime | date | time_of_day):
        return v.isoformat()
    return None if v is None else str(v)


def _parquet_cast_error(tf: TableFile, casts: Mapping[str, str], have: Mapping[str, str] | None = None, *,
                        only_fractions: bool = False) -> LoadError | None:
    """Find the first value a declared type can't hold, with its row number.

    A CAST to an integer type rounds 2.5 to 3: a value with a fraction counts as one it can't hold. With
    `only_fractions`, only the casts that could round are checked (before the load, which CASTs).
    """
    checks = {}
    for col, t in casts.items():
        c = quote_ident(col)
        lost = f"TRY_CAST({c} AS {t}) IS NULL"
        source = (have or {}).get(col, "VARCHAR")
        if t in INTEGER_TYPES and source not in INTEGER_TYPES:
            number = c if source.startswith(("DECIMAL", "DOUBLE", "FLOAT")) else f"TRY_CAST({c} AS DOUBLE)"
            lost += f" OR {number} <> trunc({number})"
        elif only_fractions:
            continue
        checks[col] = (t, lost)
    with scratch() as con:
        try:
            for col, (t, lost) in checks.items():
                c = quote_ident(col)
                # Types come from duckdb_type() (a fixed list), names are quoted: nothing from a file is pasted.
                row = con.execute(
                    f"SELECT file_row_number, {c}::VARCHAR FROM read_parquet(?, file_row_number = true) "
                    f"WHERE {c} IS NOT NULL AND ({lost}) ORDER BY file_row_number LIMIT 1",
                    [str(tf.path)],
                ).fetchone()
                if row is not None:
                    return LoadError(msg(
                        "{where}, row {row}: '{value}' can't be read as {type}, the type the model declares for "
                        "{column}. Fix: correct the data, or the type in the model's `columns:`.",
                        where=where(tf, column=col), row=int(row[0]) + 1, value=row[1], type=t.lower(), column=col))
        except duckdb.Error:
            return None
    return None
