"""A CSV file's dialect: its delimiter, quoting, header and formats, sniffed by DuckDB (and guarded against
what the sniffer gets wrong), then its column types: the plan of its read."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from kpilot.model.errors import msg
from kpilot.model.source_checks import source_problems
from kpilot.model.types import delimiter_char, format_problem
from kpilot.model.validate import is_numeric
from kpilot.sources.base import quote_ident
from kpilot.sources.files.common import ColumnSpec, LoadError, TableFile, plan_types, scratch, shown_path, where
from kpilot.sources.files.csv.encoding import CHUNK, SAMPLE_BYTES, TEXT_ENCODINGS, Encoding, detect_encoding, transcode
from kpilot.sources.files.csv.errors import diagnose, not_text
from kpilot.sources.files.csv.plan import CsvPlan

# Control bytes other than tab, line feed, form feed and carriage return: text has almost none.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f]")
_DELIMITERS = (",", ";", "\t", "|")


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
    with path.open("r", encoding=TEXT_ENCODINGS[enc.duckdb], errors="replace", newline="") as f:
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
