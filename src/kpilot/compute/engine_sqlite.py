"""SQLite as an engine: the compiled trees, rewritten for what SQLite runs, in the sqlite dialect.

SQLite has no DATE type: dates are ISO-8601 text, so a time column must hold ISO text ('2026-01-31' or
'2026-01-31 10:00:00'). `DATE_TRUNC` becomes `date(d, 'start of month')` (quarters step back the months
since the quarter's first), `EXTRACT(isodow ...)` comes from `strftime('%w', d)`, and `date - n` becomes
`date(d, '-' || n || ' days')`. `FILTER (WHERE ...)` becomes CASE WHEN inside the aggregate, as on MySQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlglot import exp

from kpilot.compute.engine_dbapi import DbApiEngine, count_if_to_sum, filter_to_case, values_to_union
from kpilot.compute.engine_mysql import is_date_minus_days, is_isodow


def _date(*args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="DATE", expressions=list(args))


def _int(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, exp.DataType.build("INT"))


def _modifier(amount: exp.Expr, unit: str) -> exp.Expr:
    """The text modifier `'-' || amount || ' <unit>'` of date()."""
    return exp.DPipe(this=exp.DPipe(this=exp.Literal.string("-"), expression=amount),
                     expression=exp.Literal.string(f" {unit}"), safe=True)


def _isodow(day: exp.Expr) -> exp.Expr:
    """1 = Monday .. 7 = Sunday (strftime's %w: 0 = Sunday)."""
    w = _int(exp.Anonymous(this="STRFTIME", expressions=[exp.Literal.string("%w"), day]))
    shifted = exp.Mod(this=exp.paren(exp.Add(this=w, expression=exp.Literal.number(6))),
                      expression=exp.Literal.number(7))
    return exp.paren(exp.Add(this=shifted, expression=exp.Literal.number(1)))


def sqlite_dates(node: exp.Expr) -> exp.Expr:
    if is_isodow(node):
        return _isodow(node.expression.copy())
    if is_date_minus_days(node):
        days = node.expression.copy().transform(sqlite_dates)  # a replaced node's children are not visited
        return _date(node.this.copy(), _modifier(days, "days"))
    if isinstance(node, exp.DateTrunc):
        day = node.this.copy()
        unit = node.unit.name.upper() if node.unit is not None else ""
        if unit == "YEAR":
            return _date(day, exp.Literal.string("start of year"))
        if unit == "MONTH":
            return _date(day, exp.Literal.string("start of month"))
        if unit == "QUARTER":
            month = _int(exp.Anonymous(this="STRFTIME", expressions=[exp.Literal.string("%m"), day.copy()]))
            back = exp.paren(exp.Mod(this=exp.paren(exp.Sub(this=month, expression=exp.Literal.number(1))),
                                     expression=exp.Literal.number(3)))
            return _date(day, exp.Literal.string("start of month"), _modifier(back, "months"))
        if unit == "WEEK":  # ISO weeks (Monday)
            back = exp.paren(exp.Sub(this=_isodow(day.copy()), expression=exp.Literal.number(1)))
            return _date(day, _modifier(back, "days"))
    return node


class SQLiteEngine(DbApiEngine):
    """Runs compiled metric queries on a SQLite file, opened read-only."""

    catalog_query = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"

    dialect = "sqlite"
    label = "SQLite"
    errors = (sqlite3.Error,)
    rewrites = (values_to_union, filter_to_case, count_if_to_sum, sqlite_dates)

    def __init__(self, path: Path):
        # Its own connection, usable from the threads computing metrics (each query holds the lock).
        super().__init__(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False))

    def close(self) -> None:
        self.con.close()
