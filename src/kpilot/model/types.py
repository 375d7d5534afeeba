"""The words a kpilot.yaml uses for data: declared column types, file source options, date formats.

The validation pass reports a wrong word at its line in kpilot.yaml; the file loader reads the same
lists, and refuses the word again for callers that did not validate.
"""

from __future__ import annotations

import re

from kpilot.model.errors import Message, msg

# A declared column type (`columns: {amount: double}`) -> the DuckDB type it loads as.
COLUMN_TYPES: dict[str, str] = {
    "int": "BIGINT", "integer": "BIGINT", "bigint": "BIGINT", "int64": "BIGINT", "long": "BIGINT",
    "double": "DOUBLE", "float": "DOUBLE", "float64": "DOUBLE", "number": "DOUBLE", "numeric": "DOUBLE",
    "real": "DOUBLE",
    "varchar": "VARCHAR", "text": "VARCHAR", "string": "VARCHAR", "str": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP", "datetime": "TIMESTAMP",
    "timestamptz": "TIMESTAMP WITH TIME ZONE", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "boolean": "BOOLEAN", "bool": "BOOLEAN",
    "time": "TIME",
}
TYPE_NAMES = tuple(sorted(k for k in COLUMN_TYPES if " " not in k))  # for messages, beside decimal(p,s)
_DECIMAL = re.compile(r"^\s*(?:decimal|numeric)\s*\(\s*(\d{1,2})\s*,\s*(\d{1,2})\s*\)\s*$", re.IGNORECASE)

# DuckDB's integer types: a value with a fraction must never be rounded into one of them.
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT")


def column_type(declared: str) -> str | None:
    """The DuckDB type of a declared column type ("double", "varchar", "decimal(12,2)"...), None if unknown."""
    key = " ".join(declared.strip().lower().split())
    if key in COLUMN_TYPES:
        return COLUMN_TYPES[key]
    m = _DECIMAL.match(declared)
    if m and int(m.group(2)) <= int(m.group(1)) <= 38:
        return f"DECIMAL({m.group(1)},{m.group(2)})"
    return None


# `options:` each kind of file source reads; Excel and Parquet sources read none.
FILE_OPTIONS: dict[str, tuple[str, ...]] = {"csv": ("quote", "escape", "comment", "skip"), "excel": (), "parquet": ()}


def delimiter_char(delimiter: str) -> str:
    """The character a `delimiter:` stands for: `\\t` and `tab` spell a tab."""
    return "\t" if delimiter in ("\\t", "tab") else delimiter


# strftime codes DuckDB reads dates with; the ones in _UNPADDED also take '-' (%-d: 1 rather than 01).
_CODES = frozenset("abcdfghjmnpuwxyzABGHIMSTUVWXYZ")
_UNPADDED = frozenset("djmyHIMS")


def format_problem(fmt: str) -> Message | None:
    """Why `fmt` cannot be a `date_format`/`timestamp_format` (no % code, an unknown code), or None."""
    codes = 0
    i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            i += 1
            continue
        code = fmt[i + 1: i + 3] if fmt[i + 1: i + 2] == "-" else fmt[i + 1: i + 2]
        if code == "%":
            i += 2
            continue
        letter = code[-1:] if code != "-" else ""
        known = letter in (_UNPADDED if code.startswith("-") else _CODES)
        if not letter or not known:
            return msg("'%{code}' is not a strftime code", code=code)
        codes += 1
        i += 1 + len(code)
    if not codes:
        return msg("it has no % code, so it cannot tell where the day, month or year is")
    return None
