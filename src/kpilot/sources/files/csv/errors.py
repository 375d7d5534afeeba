"""A failed CSV read in kpilot's words: the file, line, column and value, what is wrong and how to fix it (or a
retry through Python when the encoding was guessed wrong)."""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Iterator
from typing import TextIO

import duckdb

from kpilot.model.errors import Message, joined, msg
from kpilot.model.validate import is_numeric
from kpilot.sources.base import quote_ident
from kpilot.sources.files.common import (
    LoadError,
    TableFile,
    a_value_of,
    example_date,
    holds,
    null_value_hint,
    scratch,
    shorten,
    shown_path,
    text_column_hint,
    where,
)
from kpilot.sources.files.csv.encoding import TEXT_ENCODINGS, EncodingRetry, fallback_codec, first_invalid_utf8, line_at
from kpilot.sources.files.csv.plan import CsvPlan

_FOUND = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_VALUE = re.compile(r'Could not convert string "(.*)" to \'')
_LINE = re.compile(r"CSV Error on Line: (\d+)")


def not_text(tf: TableFile, why: Message) -> LoadError:
    return LoadError(msg("{path} does not look like CSV text: {why}. Fix: check that it is a CSV export, not a "
                         "workbook, an archive or an image with a .csv name (an Excel file must end in .xlsx and be "
                         "in an `excel` source); if it is UTF-16 text without a byte-order mark, set `encoding: "
                         "utf-16` on the source.", path=shown_path(tf), why=why))


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
        return LoadError(cast_message(plan, line, column, value, shown))
    return LoadError(msg("{where}: {reason}{shown}\nFix: correct this line.",
                         where=where(plan.tf, line=line, column=column), reason=message, shown=shown))


def _without_paths(plan: CsvPlan, text: str) -> str:
    """DuckDB's words with the file shown as the user knows it: never a temporary copy's path."""
    shown = shown_path(plan.tf)
    text = text.replace(str(plan.read_path), shown).replace(str(plan.tf.path), shown)
    return re.sub(re.escape(tempfile.gettempdir()) + r"/kpilot-[^\s\"']*", shown, text)


def cast_message(plan: CsvPlan, line: int, column: str, value: str, shown: str) -> Message:
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
        return EncodingRetry(tf, fallback_codec(tf.path))
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

    with plan.read_path.open("r", encoding=TEXT_ENCODINGS[plan.encoding.duckdb], errors="replace",
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
