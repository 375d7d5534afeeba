"""CSV files: encoding and dialect detection, the read_csv call, and DuckDB's errors turned into kpilot's."""

from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import duckdb

from kpilot.model.errors import Message, joined, msg
from kpilot.model.source_checks import source_problems
from kpilot.model.types import INTEGER_TYPES, delimiter_char, format_problem
from kpilot.model.validate import is_numeric
from kpilot.sources.base import quote_ident
from kpilot.sources.files.common import (
    ColumnSpec,
    LoadError,
    TableFile,
    a_value_of,
    example_date,
    holds,
    null_value_hint,
    plan_types,
    scratch,
    shorten,
    shown_path,
    text_column_hint,
    where,
)

CHUNK = 1 << 20
SAMPLE_BYTES = 8 * CHUNK  # what a sniff reads of a file that has to be transcoded first
_TEXT_ENCODINGS = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "utf-16": "utf-16"}  # DuckDB's name -> Python's
# Control bytes other than tab, line feed, form feed and carriage return: text has almost none.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f]")
# Integer columns are read as DOUBLE (see read_into); a DOUBLE holds every whole number below 2**53 exactly,
# and DECIMAL(38,18) every BIGINT and UBIGINT value with 18 decimals, for the columns with bigger values.
_EXACT_BELOW = 2**53
_EXACT_TYPE = "DECIMAL(38,18)"
# What the first read writes in an integer column for a value that is not whole or does not fit the type: its
# smallest (unsigned: largest) value. Finding it there sends the file to the checked read; a file that really
# holds it only takes that slower read. No extra column: storing one cost about a tenth of the read.
_LOST = {"TINYINT": -(2**7), "SMALLINT": -(2**15), "INTEGER": -(2**31), "BIGINT": -(2**63), "HUGEINT": -(2**127),
         "UTINYINT": 2**8 - 1, "USMALLINT": 2**16 - 1, "UINTEGER": 2**32 - 1, "UBIGINT": 2**64 - 1}
_DELIMITERS = (",", ";", "\t", "|")
# Bytes 0x80-0x9F are printable in Windows-1252 (€, œ, ’...) but C1 controls in latin-1, which DuckDB refuses.
_C1 = re.compile(rb"[\x80-\x9f]")
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_NATIVE = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "utf16": "utf-16",
           "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1", "iso8859-1": "latin-1"}


class EncodingRetry(Exception):
    """DuckDB found bytes that are not in the detected encoding: read the file again through Python."""

    def __init__(self, tf: TableFile, codec: str):
        super().__init__(codec)
        self.tf = tf
        self.codec = codec


@dataclass(frozen=True)
class Encoding:
    """How a file's bytes become text: natively by DuckDB, or transcoded to UTF-8 by Python first."""

    duckdb: str  # utf-8 | utf-16 | latin-1
    python: str | None = None  # codec to transcode with before DuckDB reads the file
    declared: bool = False

    @property
    def label(self) -> str:
        return self.python or self.duckdb


@dataclass
class CsvPlan:
    """Everything needed to read one CSV file with one read_csv call and no detection left."""

    tf: TableFile
    read_path: Path
    encoding: Encoding
    options: dict[str, Any]
    columns: dict[str, ColumnSpec]
    header_line: int  # the line holding the header (1-based), 0 without a header
    line_offset: int = 0  # lines of the file before `read_path`'s first data line, for appends
    notes: dict[str, str] = field(default_factory=dict)  # where dateformat etc. came from

    def read_types(self, exact: Collection[str] = ()) -> dict[str, str]:
        """The type each column is read with: DuckDB rounds 2.5 to 3 in an integer column, so integer columns
        are read as DOUBLE (or DECIMAL(38,18) for those in `exact`) and given their type back by read_into."""
        return {k: (_EXACT_TYPE if k in exact else "DOUBLE") if c.type in INTEGER_TYPES else c.type
                for k, c in self.columns.items()}

    def read_sql(self, extra: Mapping[str, Any] | None = None, *,
                 types: Mapping[str, str] | None = None) -> tuple[str, list[Any]]:
        """`read_csv(...)` with every option fixed, as SQL text with parameters."""
        opts: dict[str, Any] = {**self.options, "columns": dict(types) if types is not None else self.read_types()}
        opts.update(extra or {})
        # Option names are constants of this module; values are always bound parameters.
        sql = "read_csv(?, auto_detect=false, strict_mode=true, " + ", ".join(f"{k}=?" for k in opts) + ")"
        return sql, [str(self.read_path), *opts.values()]


# --- encodings ----------------------------------------------------------------------------------


def detect_encoding(tf: TableFile) -> Encoding:
    """The declared encoding, or one guessed from the file's first megabyte."""
    declared = tf.source.encoding
    if declared:
        key = declared.strip().lower().replace("_", "-")
        if key in _NATIVE:
            return Encoding(_NATIVE[key], declared=True)
        try:
            codec = codecs.lookup(key).name
        except LookupError:
            raise LoadError(msg(
                "{path}: unknown encoding '{encoding}' in source '{source}'. Fix: use utf-8, cp1252 (Windows, "
                "Excel's CSV export), latin-1, utf-16, or remove `encoding:` to detect it.", path=shown_path(tf),
                encoding=declared, source=tf.source.key)) from None
        native = {"utf-8": "utf-8", "latin-1": "latin-1", "iso8859-1": "latin-1"}.get(codec)
        return Encoding(native, declared=True) if native else Encoding("utf-8", codec, declared=True)
    with tf.path.open("rb") as f:
        head = f.read(CHUNK)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Encoding("utf-16")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return Encoding("utf-8")
    except UnicodeDecodeError:
        return fallback_encoding(head)


def fallback_encoding(sample: bytes) -> Encoding:
    """Not UTF-8: latin-1 natively when DuckDB accepts it, else Windows-1252 (or latin-1) through Python."""
    if not _C1.search(sample):
        return Encoding("latin-1")
    return Encoding("utf-8", "latin-1" if _CP1252_UNDEFINED.search(sample) else "cp1252")


def _fallback_codec(path: Path) -> str:
    """Windows-1252 unless the file holds a byte that Windows-1252 leaves undefined (then latin-1)."""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if _CP1252_UNDEFINED.search(chunk):
                return "latin-1"
    return "cp1252"


def transcode(src: Path, dst: Path, codec: str, *, start: int = 0, prefix: bytes = b"",
              limit: int | None = None) -> None:
    """Write `prefix` + the bytes of `src` from `start` (at most `limit` of them) to `dst` as UTF-8."""
    dec = codecs.getincrementaldecoder(codec)()
    left = limit
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        fout.write(dec.decode(prefix))
        fin.seek(start)
        while left is None or left > 0:
            chunk = fin.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            fout.write(dec.decode(chunk))
        if limit is None:
            fout.write(dec.decode(b"", final=True))


def first_invalid_utf8(path: Path) -> tuple[int, int, str] | None:
    """(line, byte value, the line's text) of the first byte that is not valid UTF-8, or None."""
    lines = 0
    pending = b""
    with path.open("rb") as f:
        while True:
            data = f.read(CHUNK)
            buf = pending + data
            if not buf:
                return None
            try:
                buf.decode("utf-8")
                good = len(buf)
            except UnicodeDecodeError as e:
                if data and e.reason == "unexpected end of data" and e.start >= len(buf) - 3:
                    good = e.start  # a character cut by the chunk boundary: finish it with the next chunk
                else:
                    start = buf.rfind(b"\n", 0, e.start) + 1
                    end = buf.find(b"\n", e.start)
                    text = buf[start:end if end >= 0 else len(buf)].decode("utf-8", "backslashreplace")
                    return lines + buf.count(b"\n", 0, e.start) + 1, buf[e.start], text
            lines += buf.count(b"\n", 0, good)
            pending = buf[good:]
            if not data:
                return None


def line_at(path: Path, pos: int) -> int:
    """1-based line number of byte `pos` (counting newlines before it, as a text editor does)."""
    lines, done = 0, 0
    with path.open("rb") as f:
        while done < pos:
            chunk = f.read(min(CHUNK, pos - done))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            done += len(chunk)
    return lines + 1


# --- dialect -----------------------------------------------------------------------------------


def _base_options(tf: TableFile, enc: Encoding) -> dict[str, Any]:
    src = tf.source
    # `kpilot validate` reports these at their line in kpilot.yaml; a load refuses them all the same.
    problems = source_problems(src)
    if problems:
        raise LoadError(msg("source '{source}': {problem}. Fix: {fix}.", source=src.key, problem=problems[0].message,
                            fix=problems[0].fix))
    opts: dict[str, Any] = {"quote": str(src.options.get("quote", '"')), "header": src.header,
                            "comment": str(src.options.get("comment", "")),
                            "nullstr": ["", *(src.null_values or [])]}
    if "escape" in src.options:
        opts["escape"] = str(src.options["escape"])
    if "skip" in src.options:
        opts["skip"] = int(src.options["skip"])
    if src.delimiter:
        opts["delim"] = delimiter_char(src.delimiter)
    if src.decimal:
        opts["decimal_separator"] = src.decimal
    for key, name, fmt in (("dateformat", "date_format", src.date_format),
                           ("timestampformat", "timestamp_format", src.timestamp_format)):
        if fmt:
            _check_format(tf, name, fmt)
            opts[key] = fmt
    if enc.python is None and enc.duckdb != "utf-8":
        opts["encoding"] = enc.duckdb
    return opts


def _check_format(tf: TableFile, name: str, fmt: str) -> None:
    with scratch() as con:
        try:
            con.execute("SELECT try_strptime('', ?)", [fmt]).fetchall()
            reason: str | None = format_problem(fmt)
        except duckdb.Error as e:
            reason = str(e).split(": ", 1)[-1]
    if reason is not None:
        raise LoadError(msg("source '{source}': `{name}: \"{format}\"` is not a valid format ({reason}). Fix: use "
                            "strftime codes, e.g. \"%d/%m/%Y\" for 31/12/2026 or \"%d/%m/%Y %H:%M\" for "
                            "31/12/2026 17:30.", source=tf.source.key, name=name, format=fmt, reason=reason))


def _sniff(con: duckdb.DuckDBPyConnection, path: Path, opts: Mapping[str, Any]) -> tuple[Any, ...]:
    sql = "SELECT * FROM sniff_csv(?, " + ", ".join(f"{k}=?" for k in opts) + ")"
    row = con.execute(sql, [str(path), *opts.values()]).fetchone()
    assert row is not None
    return tuple(row)


def _head_lines(path: Path, enc: Encoding, n: int) -> list[str]:
    with path.open("r", encoding=_TEXT_ENCODINGS[enc.duckdb], errors="replace", newline="") as f:
        return [f.readline() for _ in range(n)]


def _guess_delimiter(line: str) -> str | None:
    counts = {d: line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def _parse_header(line: str, delim: str, quote: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(line), delimiter=delim, quotechar=quote or '"'))
    return [c.strip() for c in rows[0]] if rows else []


def _check_empty(tf: TableFile) -> None:
    size = tf.path.stat().st_size
    if size == 0 or (size <= CHUNK and not tf.path.read_bytes().strip(b" \t\r\n\xef\xbb\xbf")):
        what = msg("is empty (0 bytes)") if size == 0 else msg("holds only blank lines")
        raise LoadError(msg("{path} {what}. Fix: export the data again; a CSV file needs at least a header line (or "
                            "set `header: false` and give it data lines).", path=shown_path(tf), what=what))


def _check_text(tf: TableFile, enc: Encoding) -> None:
    """Refuse a file whose first bytes are not text (a workbook, an archive, an image named .csv)."""
    if any(wide in enc.label for wide in ("16", "32")):
        return  # UTF-16 and UTF-32 text is mostly zero bytes
    with tf.path.open("rb") as f:
        head = f.read(CHUNK)
    controls = _CONTROL.findall(head)
    if len(controls) > max(8, len(head) // 100):
        raise LoadError(not_text(tf, msg("{n} of its first {total} bytes are control characters, which text does not "
                                         "hold", n=len(controls), total=len(head))))


def not_text(tf: TableFile, why: Message) -> LoadError:
    return LoadError(msg("{path} does not look like CSV text: {why}. Fix: check that it is a CSV export, not a "
                         "workbook, an archive or an image with a .csv name (an Excel file must end in .xlsx and be "
                         "in an `excel` source); if it is UTF-16 text without a byte-order mark, set `encoding: "
                         "utf-16` on the source.", path=shown_path(tf), why=why))


def _sniff_dialect(con: duckdb.DuckDBPyConnection, tf: TableFile, read_path: Path, enc: Encoding,
                   opts: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """DuckDB's sniffer, guarded against what it gets wrong when a bad row sits in its sample."""

    def attempt(o: dict[str, Any]) -> tuple[tuple[Any, ...] | None, duckdb.Error | None]:
        try:
            return _sniff(con, read_path, o), None
        except duckdb.Error as e:
            return None, e

    row, failure = attempt(opts)
    skip = int(opts.get("skip", 0))
    lines = _head_lines(read_path, enc, skip + 1 + 20)
    head = lines[skip]
    guess = _guess_delimiter(head)
    if row is not None and "skip" not in tf.source.options and int(row[5]) > 0:
        # The sniffer skips title lines above the header, but also real rows when a later row is ragged.
        counts = [len(_parse_header(ln, row[0], opts["quote"])) for ln in lines[: int(row[5])] if ln.strip()]
        if any(n >= max(2, len(row[7]) // 2) for n in counts):
            opts = {**opts, "skip": 0}
            row, failure = attempt(opts)
    if "delim" not in opts and guess and (row is None or (len(row[7]) == 1 and row[0] != guess)):
        # One column whose name holds a delimiter: rows the sniffer could not split the same way.
        opts = {**opts, "delim": guess}
        row, failure = attempt(opts)
    if row is None:
        delim = opts.get("delim") or guess or ","
        skip = int(opts.get("skip", 0))
        fields = _parse_header(lines[skip], delim, opts["quote"])
        names = fields if opts["header"] else [f"column{i}" for i in range(len(fields))]
        plan = CsvPlan(tf, read_path, enc, {**opts, "delim": delim, "escape": opts.get("escape", opts["quote"])},
                       {n: ColumnSpec("VARCHAR", "detected") for n in names}, skip + 1 if opts["header"] else 0)
        raise diagnose(plan, failure or duckdb.Error("could not detect the CSV dialect"))
    return row, opts


def _looks_like(con: duckdb.DuckDBPyConnection, plan: CsvPlan, fmt: str, cols: list[str]) -> list[str]:
    """Text columns of the sample whose values mostly parse with a declared date/timestamp format."""
    if not cols:
        return []
    text_plan = replace(plan, columns={k: ColumnSpec("VARCHAR", "detected") for k in plan.columns})
    read, params = text_plan.read_sql()
    probes = ", ".join(f"count({quote_ident(c)}), count(try_strptime({quote_ident(c)}, ?))" for c in cols)
    sql = f"SELECT {probes} FROM (SELECT * FROM {read} LIMIT 20480)"
    try:
        counts = con.execute(sql, [fmt] * len(cols) + params).fetchone()
    except duckdb.Error:
        return []  # the full read will report the file's real problem
    assert counts is not None
    return [c for i, c in enumerate(cols) if counts[2 * i] and counts[2 * i + 1] * 2 >= counts[2 * i]]


# Dialects sniffed, by file version (path, size, mtime, inode), encoding and options: `kpilot load` sniffs each
# file to check the definitions against its columns, then plans the load; the second sniff is this lookup. A
# file that changed has another size or mtime, as for the load's own unchanged-file test.
_SNIFFED: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}
_SNIFFED_MAX = 64


def _sniffed(tf: TableFile, read_path: Path, enc: Encoding,
             opts: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """DuckDB's sniff of the file (guarded by _sniff_dialect) and the options it settles."""
    key: tuple[Any, ...] | None = None
    if read_path == tf.path:  # a transcoded copy is new each time (and may be a sample only)
        st = read_path.stat()
        key = (str(read_path), st.st_size, st.st_mtime_ns, st.st_ino, enc, repr(sorted(opts.items())))
        if key in _SNIFFED:
            row, settled = _SNIFFED[key]
            return row, dict(settled)
    with scratch() as con:
        row, opts = _sniff_dialect(con, tf, read_path, enc, opts)
        if "decimal_separator" not in opts and row[0] != ",":
            # A ';'-separated file from a French or German Excel usually writes 1234,56: try it that way.
            alt = _sniff(con, read_path, {**opts, "delim": row[0], "decimal_separator": ","})
            numeric = [sum(is_numeric(c["type"]) for c in r[7]) for r in (row, alt)]
            if numeric[1] > numeric[0] and len(alt[7]) == len(row[7]):
                row, opts = alt, {**opts, "decimal_separator": ","}
    if key is not None:
        if len(_SNIFFED) >= _SNIFFED_MAX:
            _SNIFFED.pop(next(iter(_SNIFFED)))
        _SNIFFED[key] = (row, dict(opts))
    return row, dict(opts)


def plan_csv(
    tf: TableFile,
    workdir: Path,
    *,
    previous: Mapping[str, str] | None = None,
    declared: Mapping[str, str] | None = None,
    codec: str | None = None,
    sample_only: bool = False,
) -> CsvPlan:
    """Work out encoding, dialect and column types of a CSV file; raise LoadError for what can't load."""
    _check_empty(tf)
    enc = Encoding("utf-8", codec) if codec else detect_encoding(tf)
    _check_text(tf, enc)
    read_path = tf.path
    if enc.python:
        read_path = workdir / f"{tf.table}.utf8.csv"
        transcode(tf.path, read_path, enc.python, limit=SAMPLE_BYTES if sample_only else None)
    row, opts = _sniffed(tf, read_path, enc, _base_options(tf, enc))
    delim, quote, escape, skip, header = row[0], row[1], row[2], int(row[5]), bool(row[6])
    opts.update(delim=delim, skip=skip, header=header)
    opts["quote"] = "" if quote == "(empty)" else quote
    opts["escape"] = opts["quote"] if escape == "(empty)" else escape
    notes = {}
    for key, found in (("dateformat", row[8]), ("timestampformat", row[9])):
        if key in opts:
            notes[key] = "declared"
        elif found and found not in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
            # ISO dates are left to DuckDB's fast default parser; other formats must be given.
            opts[key], notes[key] = found, "detected"
    detected = {c["name"]: c["type"] for c in row[7]}
    header_line = skip + 1 if header else 0
    if header:
        head = _head_lines(read_path, enc, skip + 1)[-1]
        _check_names(tf, _parse_header(head, delim, opts["quote"]), header_line)
    plan = CsvPlan(tf, read_path, enc, opts, {}, header_line, notes=notes)
    plan.columns = plan_types(detected, previous, declared, where(tf))
    for key, t in (("dateformat", "DATE"), ("timestampformat", "TIMESTAMP")):
        if notes.get(key) == "declared":
            text = [c for c, s in plan.columns.items() if s.type == "VARCHAR" and s.origin == "detected"]
            with scratch() as con:
                looks = _looks_like(con, plan, opts[key], text)
            for c in looks:
                plan.columns[c] = ColumnSpec(t, "format")
    return plan


def _check_names(tf: TableFile, names: list[str], line: int) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if "\x00" in name:
            raise LoadError(msg(
                "{where}: field {field} of the header holds a NUL byte (0x00), which is not text: '{name}'. Fix: "
                "correct the header line; if a program wrote the file, export it again as CSV text.",
                where=where(tf, line=line), field=i, name=name.replace("\x00", "\\x00")))
        key = name.lower()
        if key in seen:
            raise LoadError(msg(
                "{where}: column '{name}' appears twice in the header (fields {first} and {second}). Fix: rename one "
                "of them (names are compared without case).", where=where(tf, line=line), name=name, first=seen[key],
                second=i))
        seen[key] = i


def plan_append(tf: TableFile, workdir: Path, full: CsvPlan, columns: Mapping[str, str], old_size: int) -> CsvPlan:
    """A plan reading only the bytes after `old_size` (a whole number of lines), with the table's types."""
    header_bytes = b""
    with tf.path.open("rb") as f:
        for _ in range(full.header_line):
            header_bytes += f.readline()
        f.seek(0)
        old_lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(min(CHUNK, old_size - f.tell())), b""))
    part = workdir / f"{tf.table}.append.csv"
    if full.encoding.python:
        transcode(tf.path, part, full.encoding.python, start=old_size, prefix=header_bytes)
    else:
        with tf.path.open("rb") as fin, part.open("wb") as fout:
            fout.write(header_bytes)
            fin.seek(old_size)
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
    opts = {**full.options, "skip": max(0, full.header_line - 1)}
    declared = {k for k, c in full.columns.items() if c.origin == "declared"}
    specs = {k: ColumnSpec(v, "declared" if k in declared else "previous") for k, v in columns.items()}
    return replace(full, read_path=part, options=opts, columns=specs, line_offset=old_lines - full.header_line)


# --- reading -----------------------------------------------------------------------------------


def read_into(con: duckdb.DuckDBPyConnection, table: str, plan: CsvPlan, *, temp: bool = False) -> list[str]:
    """Create `table` from the file, with integer columns that never hold a rounded value.

    DuckDB rounds 2.5 to 3 when it reads it into an integer column, so integer columns are read as DOUBLE
    (CsvPlan.read_types) and cast back in the same read, a value that is not whole or does not fit becoming
    the type's _LOST value. When no column holds that value, nor a number of 2**53 or more (which a DOUBLE
    may have rounded), that was the only read. Otherwise see _read_checked, which reads the file again.
    Returns the integer columns left DOUBLE because they hold decimals.
    """
    create = f"CREATE OR REPLACE {'TEMP TABLE' if temp else 'TABLE'} {table} AS SELECT"
    ints = [c for c, spec in plan.columns.items() if spec.type in INTEGER_TYPES]
    read, params = plan.read_sql()
    if not ints:
        con.execute(f"{create} * FROM {read}", params)
        return []
    casts, checks = [], []
    for c in ints:
        q, t = quote_ident(c), plan.columns[c].type
        lost = f"CAST('{_LOST[t]}' AS {t})"  # constants of this module: nothing from the file is pasted
        casts.append(f"CASE WHEN {_fits(c, t)} THEN TRY_CAST({q} AS {t}) ELSE {lost} END AS {q}")
        checks.append(f"bool_or({q} = {lost}), max(abs({q}::DOUBLE)) FILTER (WHERE {q} <> {lost})")
    con.execute(f"{create} * REPLACE ({', '.join(casts)}) FROM {read}", params)
    row = con.execute(f"SELECT {', '.join(checks)} FROM {table}").fetchone()
    assert row is not None
    lost_any, magnitudes = any(row[0::2]), row[1::2]
    if not lost_any and all(m is None or m < _EXACT_BELOW for m in magnitudes):
        return []
    # Big whole numbers are still big once cast: read those columns exactly straight away.
    return _read_checked(con, create, table, plan, ints, _big(ints, magnitudes))


def _read_checked(con: duckdb.DuckDBPyConnection, create: str, table: str, plan: CsvPlan, ints: list[str],
                  exact: set[str]) -> list[str]:
    """Read integer columns as DOUBLE (those in `exact` as DECIMAL(38,18)) and look at them: all whole, they
    become their integer type again; one holding a fraction stays DOUBLE, unless the model declares it an
    integer (a LoadError naming the line). A column found to hold whole numbers of 2**53 or more, which a
    DOUBLE may round, is read once more as DECIMAL(38,18)."""
    while True:
        read, params = plan.read_sql(types=plan.read_types(exact))
        con.execute(f"{create} * FROM {read}", params)
        fits = ", ".join(f"bool_and({_fits(c, plan.columns[c].type)})" for c in ints)
        row = con.execute(f"SELECT {fits}, {_magnitudes(ints)} FROM {table}").fetchone()
        assert row is not None
        whole = {c for c, ok in zip(ints, row[:len(ints)], strict=True) if ok is not False}  # None: no row at all
        big = (_big(ints, row[len(ints):]) & whole) - exact
        if not big:
            break
        exact |= big
    widened = []
    for c in ints:
        if c in whole:
            con.execute(f"ALTER TABLE {table} ALTER {quote_ident(c)} TYPE {plan.columns[c].type}")
        elif plan.columns[c].origin == "declared":
            raise LoadError(_fraction_message(con, table, plan, c))
        else:
            if c in exact:
                con.execute(f"ALTER TABLE {table} ALTER {quote_ident(c)} TYPE DOUBLE")
            widened.append(c)
    return widened


def _magnitudes(columns: list[str]) -> str:
    """SQL: the largest magnitude of each column, as a DOUBLE (abs() of a BIGINT can overflow)."""
    return ", ".join(f"max(abs({quote_ident(c)}::DOUBLE))" for c in columns)


def _big(columns: list[str], magnitudes: Sequence[Any]) -> set[str]:
    """Columns whose numbers a DOUBLE may round but DECIMAL(38,18) holds exactly."""
    return {c for c, m in zip(columns, magnitudes, strict=True) if m is not None and _EXACT_BELOW <= m < 1e20}


def _fits(column: str, integer_type: str) -> str:
    """SQL: the column's value is empty, or whole and within `integer_type` (one of INTEGER_TYPES, not file
    text)."""
    q = quote_ident(column)
    return f"({q} IS NULL OR ({q} = trunc({q}) AND TRY_CAST({q} AS {integer_type}) IS NOT NULL))"


def _fraction_message(con: duckdb.DuckDBPyConnection, table: str, plan: CsvPlan, column: str) -> Message:
    """The first value of a declared integer column that has a fraction (or does not fit), with its line."""
    row = con.execute(f"SELECT n FROM (SELECT row_number() OVER (ORDER BY rowid) - 1 AS n, "
                      f"{_fits(column, plan.columns[column].type)} AS ok FROM {table}) WHERE NOT ok ORDER BY n LIMIT 1"
                      ).fetchone()
    assert row is not None
    line, text, fields = record_at(plan, int(row[0]))
    index = list(plan.columns).index(column)
    value = fields[index].strip() if index < len(fields) else "?"
    return _cast_message(plan, line, column, value, f"\n  {line} | {shorten(text)}")


def record_at(plan: CsvPlan, index: int) -> tuple[int, str, list[str]]:
    """Line in the whole file, text of that line and fields of data row `index` (0-based, in file order)."""
    opts = plan.options
    quote, escape = opts.get("quote") or "", opts.get("escape") or ""
    doubled = escape in ("", quote)
    comment = opts.get("comment") or ""
    start = int(opts.get("skip", 0)) + (1 if opts.get("header") else 0)
    lines: list[str] = []

    def remembered(f: TextIO) -> Iterator[str]:
        for line in f:
            lines.append(line)
            yield line

    with plan.read_path.open("r", encoding=_TEXT_ENCODINGS[plan.encoding.duckdb], errors="replace",
                             newline="") as f:
        for _ in range(start):
            f.readline()
        reader = csv.reader(remembered(f), delimiter=opts.get("delim", ","), quotechar=quote or None,
                            quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE, doublequote=doubled,
                            escapechar=None if doubled else escape, strict=False)
        n = 0
        for fields in reader:
            first, text = reader.line_num - len(lines) + 1, lines[0] if lines else ""
            lines.clear()
            # DuckDB skips blank lines (but reads them as empty values when there is one column) and comments.
            if (not fields and len(plan.columns) > 1) or (comment and text.startswith(comment)):
                continue
            if n == index:
                return start + first + plan.line_offset, text, fields
            n += 1
    return 0, "", []


# --- errors ------------------------------------------------------------------------------------

_FOUND = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_VALUE = re.compile(r'Could not convert string "(.*)" to \'')
_LINE = re.compile(r"CSV Error on Line: (\d+)")


def diagnose(plan: CsvPlan, exc: BaseException) -> LoadError | EncodingRetry:
    """Turn a failed read into kpilot's message (file, line, column, value, fix), or ask for a transcoded retry."""
    text = str(exc)
    if "Invalid unicode" in text or "not utf-8 encoded" in text or "is not latin-1 encoded" in text:
        return _encoding_error(plan)
    reject = _first_reject(plan, text)
    if reject is None and "Error when sniffing file" in text:
        return not_text(plan.tf, msg("no delimiter among , ; tab | splits its lines into the same number of fields"))
    if reject is None:
        first = next((ln for ln in text.splitlines() if ln.strip()), "unknown error")
        first = re.sub(r"^[A-Za-z ]+Error: ", "", first)
        return LoadError(msg("{where}: could not be read: {reason}. Fix: check that it is a CSV file; if its "
                             "delimiter or encoding is unusual, declare `delimiter:` or `encoding:` on the source.",
                             where=where(plan.tf), reason=_without_paths(plan, first)))
    line_pos, column, kind, csv_line, message = reject
    line = line_at(plan.read_path, line_pos) + plan.line_offset
    shown = f"\n  {line} | {shorten(csv_line)}"
    if kind in ("TOO MANY COLUMNS", "MISSING COLUMNS"):
        m = _FOUND.search(message)
        expected, found = (int(m.group(1)), int(m.group(2))) if m else (len(plan.columns), 0)
        delim = plan.options.get("delim", ",")
        shown_delim = msg("tab") if delim == "\t" else f"'{delim}'"
        if found > expected:
            fix = msg('remove the extra {delimiter}, or put the value that contains it between double quotes, e.g. '
                      '"Paris{delim} France".', delimiter=shown_delim, delim=delim)
        else:
            fix = msg("add the missing values; an empty value is nothing between two delimiters, e.g. "
                      "a{delim}{delim}c.", delim=delim)
        return LoadError(msg("{where}: {found} field(s) where the header has {expected} (delimiter {delimiter})."
                             "{shown}\nFix: {fix}", where=where(plan.tf, line=line), found=found, expected=expected,
                             delimiter=shown_delim, shown=shown, fix=fix))
    if kind == "UNQUOTED VALUE" or kind == "LINE SIZE OVER MAXIMUM":
        return LoadError(msg(
            "{where}: a quoted value is not closed properly: a double quote opens it and is either never closed or "
            "followed by other characters before the next delimiter, so the rest of the file would be read as one "
            'value.{shown}\nFix: close the quote; a double quote inside a quoted value is written twice ("").',
            where=where(plan.tf, line=line, column=column), shown=shown))
    if kind == "CAST" and column in plan.columns:
        m = _VALUE.search(message)
        value = m.group(1) if m else "?"
        return LoadError(_cast_message(plan, line, column, value, shown))
    return LoadError(msg("{where}: {reason}{shown}\nFix: correct this line.",
                         where=where(plan.tf, line=line, column=column), reason=message, shown=shown))


def _without_paths(plan: CsvPlan, text: str) -> str:
    """DuckDB's words with the file shown as the user knows it: never a temporary copy's path."""
    shown = shown_path(plan.tf)
    text = text.replace(str(plan.read_path), shown).replace(str(plan.tf.path), shown)
    return re.sub(re.escape(tempfile.gettempdir()) + r"/kpilot-[^\s\"']*", shown, text)


def _cast_message(plan: CsvPlan, line: int, column: str, value: str, shown: str) -> Message:
    spec = plan.columns[column]
    t = spec.type
    head = msg("{where}: '{value}' is not {a_value}", where=where(plan.tf, line=line, column=column), value=value,
               a_value=a_value_of(t))
    origin = {
        "declared": msg("the model declares {column} as {type}", column=column, type=t.lower()),
        "previous": msg("the column held {holds} when the table was last loaded", holds=holds(t)),
    }.get(spec.origin, msg("the column holds {holds}, as detected from the first rows", holds=holds(t)))
    fmt_key = "dateformat" if t == "DATE" else "timestampformat" if t.startswith("TIMESTAMP") else None
    if fmt_key and fmt_key in plan.options:
        fmt = plan.options[fmt_key]
        how = "date_format" if fmt_key == "dateformat" else "timestamp_format"
        said = (msg("the source's `{option}`", option=how) if plan.notes.get(fmt_key) == "declared"
                else msg("detected from the first rows"))
        return msg("{head} in the format {format} ({said}), e.g. {example}.{shown}\nFix: write the value in that "
                   "format or leave it empty, or change `{option}` on the source.", head=head, format=fmt, said=said,
                   example=example_date(fmt, fmt_key != "dateformat"), shown=shown, option=how)
    if fmt_key:
        example = "2026-12-31" if t == "DATE" else "2026-12-31 17:30:00"
        how = "date_format" if t == "DATE" else "timestamp_format"
        return msg("{head} ({origin}; expected like {example}).{shown}\nFix: correct the value or leave it empty; if "
                   "the file writes dates another way, declare it on the source, e.g. `{option}: \"%d/%m/%Y\"`.",
                   head=head, origin=origin, example=example, shown=shown, option=how)
    fix = [msg("correct the value or leave the field empty")]
    comma = plan.options.get("decimal_separator") == ","
    if is_numeric(t) and "," in value and not comma:
        fix.append(msg("if the file writes decimals with a comma, set `decimal: \",\"` on the source"))
    elif is_numeric(t) and "." in value and comma:
        fix.append(msg("this file's decimal separator is a comma: write {value}", value=value.replace(".", ",")))
    elif not re.fullmatch(r"[\d\s.,+-]*", value):
        fix.append(null_value_hint(value))
    if spec.origin != "declared":
        fix.append(text_column_hint(column))
    return msg("{head} ({origin}).{shown}\nFix: {fix}.", head=head, origin=origin, shown=shown,
               fix=joined(msg("; "), fix))


def _first_reject(plan: CsvPlan, text: str) -> tuple[int, str | None, str, str, str] | None:
    """Read the file again, keeping DuckDB's rejected rows, and return the first one."""
    read, params = plan.read_sql({"store_rejects": True, "rejects_limit": 10000})
    counts = ", ".join(f"count({quote_ident(c)})" for c in plan.columns) or "count(*)"
    with scratch() as con:
        try:
            con.execute(f"SELECT {counts} FROM {read}", params).fetchall()
            rows = con.execute(
                "SELECT line, line_byte_position, column_name, error_type, csv_line, error_message "
                "FROM reject_errors ORDER BY line_byte_position"
            ).fetchall()
        except duckdb.Error:
            return None
    if not rows:
        return None
    m = _LINE.search(text)
    # DuckDB's own message names the row it stopped at; rejects give that row's byte position.
    pick = next((r for r in rows if m and r[0] == int(m.group(1))), rows[0])
    return int(pick[1]), pick[2], str(pick[3]), str(pick[4] or ""), str(pick[5] or "")


def _encoding_error(plan: CsvPlan) -> LoadError | EncodingRetry:
    tf, enc = plan.tf, plan.encoding
    if not enc.declared:
        return EncodingRetry(tf, _fallback_codec(tf.path))
    if enc.python is None and enc.duckdb == "latin-1":
        return EncodingRetry(tf, "latin-1")  # latin-1 decodes every byte; DuckDB only refuses C1 controls
    bad = first_invalid_utf8(tf.path)
    if bad is None:
        return LoadError(msg("{where}: is not {encoding} text. Fix: check the file's `encoding:`.", where=where(tf),
                             encoding=enc.label))
    line, byte, text = bad
    return LoadError(msg(
        "{where}: byte 0x{byte:02X} is not valid UTF-8, but the source declares encoding {encoding}.\n"
        "  {line} | {text}\nThe file looks like Windows-1252 text (what Excel writes for 'CSV' on Windows). Fix: set "
        "`encoding: cp1252` on the source, or remove `encoding:` to let kpilot detect it, or save the file as "
        "'CSV UTF-8'.", where=where(tf, line=line), byte=byte, encoding=tf.source.encoding, line=line,
        text=shorten(text)))
