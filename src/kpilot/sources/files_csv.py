"""CSV files: encoding and dialect detection, the read_csv call, and DuckDB's errors turned into kpilot's."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb

from kpilot.model.errors import Message, did_you_mean, joined, msg, one_of
from kpilot.sources.files_common import (
    ColumnSpec,
    LoadError,
    TableFile,
    a_value_of,
    example_date,
    holds,
    is_numeric,
    null_value_hint,
    plan_types,
    quote_ident,
    shorten,
    shown_path,
    text_column_hint,
    where,
)

CHUNK = 1 << 20
SAMPLE_BYTES = 8 * CHUNK  # what a sniff reads of a file that has to be transcoded first
CSV_OPTIONS = ("quote", "escape", "comment", "skip")
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

    def read_sql(self, extra: Mapping[str, Any] | None = None) -> tuple[str, list[Any]]:
        """`read_csv(...)` with every option fixed, as SQL text with parameters."""
        opts: dict[str, Any] = {**self.options, "columns": {k: c.type for k, c in self.columns.items()}}
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
    unknown = [k for k in src.options if k not in CSV_OPTIONS]
    if unknown:
        raise LoadError(msg(
            "source '{source}': unknown option '{option}' for a CSV file;{hint} options: {options}. Fix: remove it or "
            "correct its name.", source=src.key, option=unknown[0], hint=did_you_mean(unknown[0], CSV_OPTIONS),
            options=one_of(CSV_OPTIONS)))
    opts: dict[str, Any] = {"quote": str(src.options.get("quote", '"')), "header": src.header,
                            "comment": str(src.options.get("comment", "")),
                            "nullstr": ["", *(src.null_values or [])]}
    if "escape" in src.options:
        opts["escape"] = str(src.options["escape"])
    if "skip" in src.options:
        opts["skip"] = int(src.options["skip"])
    if src.delimiter:
        opts["delim"] = "\t" if src.delimiter in ("\\t", "tab") else src.delimiter
    if src.decimal:
        if src.decimal == opts.get("delim"):
            raise LoadError(msg("source '{source}': `decimal: \"{decimal}\"` is also the `delimiter:`, so a value "
                                "like 1{decimal}5 could not be told from two fields. Fix: change one of them (a file "
                                "with decimal commas usually has `delimiter: \";\"`).", source=src.key,
                                decimal=src.decimal))
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
    try:
        duckdb.connect().execute("SELECT try_strptime('', ?)", [fmt]).fetchall()
    except duckdb.Error as e:
        reason = str(e).split(": ", 1)[-1]
        raise LoadError(msg("source '{source}': `{name}: \"{format}\"` is not a valid format ({reason}). Fix: use "
                            "strftime codes, e.g. \"%d/%m/%Y\" for 31/12/2026 or \"%d/%m/%Y %H:%M\" for "
                            "31/12/2026 17:30.", source=tf.source.key, name=name, format=fmt, reason=reason)
                        ) from None


def _sniff(con: duckdb.DuckDBPyConnection, path: Path, opts: Mapping[str, Any]) -> tuple[Any, ...]:
    sql = "SELECT * FROM sniff_csv(?, " + ", ".join(f"{k}=?" for k in opts) + ")"
    row = con.execute(sql, [str(path), *opts.values()]).fetchone()
    assert row is not None
    return tuple(row)


def _head_lines(path: Path, enc: Encoding, n: int) -> list[str]:
    text_encoding = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "utf-16": "utf-16"}[enc.duckdb]
    with path.open("r", encoding=text_encoding, errors="replace", newline="") as f:
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
    read_path = tf.path
    if enc.python:
        read_path = workdir / f"{tf.table}.utf8.csv"
        transcode(tf.path, read_path, enc.python, limit=SAMPLE_BYTES if sample_only else None)
    opts = _base_options(tf, enc)
    con = duckdb.connect()
    try:
        row, opts = _sniff_dialect(con, tf, read_path, enc, opts)
        if "decimal_separator" not in opts and row[0] != ",":
            # A ';'-separated file from a French or German Excel usually writes 1234,56: try it that way.
            alt = _sniff(con, read_path, {**opts, "delim": row[0], "decimal_separator": ","})
            numeric = [sum(is_numeric(c["type"]) for c in r[7]) for r in (row, alt)]
            if numeric[1] > numeric[0] and len(alt[7]) == len(row[7]):
                row, opts = alt, {**opts, "decimal_separator": ","}
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
            _check_duplicates(tf, _parse_header(head, delim, opts["quote"]), header_line)
        plan = CsvPlan(tf, read_path, enc, opts, {}, header_line, notes=notes)
        plan.columns = plan_types(detected, previous, declared, where(tf))
        for key, t in (("dateformat", "DATE"), ("timestampformat", "TIMESTAMP")):
            if notes.get(key) == "declared":
                text = [c for c, s in plan.columns.items() if s.type == "VARCHAR" and s.origin == "detected"]
                for c in _looks_like(con, plan, opts[key], text):
                    plan.columns[c] = ColumnSpec(t, "format")
        return plan
    finally:
        con.close()


def _check_duplicates(tf: TableFile, names: list[str], line: int) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
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
    if reject is None:
        first = next((ln for ln in text.splitlines() if ln.strip()), "unknown error")
        first = re.sub(r"^[A-Za-z ]+Error: ", "", first)
        return LoadError(msg("{where}: could not be read: {reason}. Fix: check that it is a CSV file; if its "
                             "delimiter or encoding is unusual, declare `delimiter:` or `encoding:` on the source.",
                             where=where(plan.tf), reason=first))
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
    con = duckdb.connect()
    try:
        con.execute(f"SELECT {counts} FROM {read}", params).fetchall()
        rows = con.execute(
            "SELECT line, line_byte_position, column_name, error_type, csv_line, error_message "
            "FROM reject_errors ORDER BY line_byte_position"
        ).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
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
