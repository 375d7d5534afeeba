"""The typed read of a CSV file: one read_csv call into a table whose integer columns never hold a rounded value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from kpilot.model.errors import Message
from kpilot.model.types import INTEGER_TYPES
from kpilot.sources.base import quote_ident
from kpilot.sources.files.common import LoadError, shorten
from kpilot.sources.files.csv.errors import cast_message, record_at
from kpilot.sources.files.csv.plan import CsvPlan

# Integer columns are read as DOUBLE (see read_into); a DOUBLE holds every whole number below 2**53 exactly,
# and DECIMAL(38,18) every BIGINT and UBIGINT value with 18 decimals, for the columns with bigger values.
_EXACT_BELOW = 2**53
# What the first read writes in an integer column for a value that is not whole or does not fit the type: its
# smallest (unsigned: largest) value. Finding it there sends the file to the checked read; a file that really
# holds it only takes that slower read. No extra column: storing one cost about a tenth of the read.
_LOST = {"TINYINT": -(2**7), "SMALLINT": -(2**15), "INTEGER": -(2**31), "BIGINT": -(2**63), "HUGEINT": -(2**127),
         "UTINYINT": 2**8 - 1, "USMALLINT": 2**16 - 1, "UINTEGER": 2**32 - 1, "UBIGINT": 2**64 - 1}


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
    return cast_message(plan, line, column, value, f"\n  {line} | {shorten(text)}")
