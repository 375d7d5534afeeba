"""What the MySQL/MariaDB and SQLite engines share: a DB-API connection, rewrites of the compiled trees.

The compiler writes one tree per query; these engines generate it in their dialect after rewriting what the
database cannot run: `agg(x) FILTER (WHERE c)` becomes `agg(CASE WHEN c THEN x END)` (the same value: an
aggregate skips NULLs), and the constructs neither database has are refused with a clear error.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlglot import exp

from kpilot.compute.engine import EngineError, check_emitted
from kpilot.model.errors import msg

# Columns the compiler names that hold a date (a database without a DATE type returns them as text).
DATE_COLUMNS = ("period", "first", "last")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAMES = {"mysql": "MySQL/MariaDB", "sqlite": "SQLite"}


def filter_to_case(node: exp.Expr) -> exp.Expr:
    """`agg(x) FILTER (WHERE c)` -> `agg(CASE WHEN c THEN x END)` (count(*) counts `CASE WHEN c THEN 1 END`)."""
    if not isinstance(node, exp.Filter):
        return node
    where = node.expression
    cond = where.this if isinstance(where, exp.Where) else where
    agg: exp.Expr = node.this.copy()
    if isinstance(agg, exp.CountIf):
        return exp.Sum(this=exp.Case(ifs=[exp.If(this=exp.and_(exp.paren(agg.this.copy()), exp.paren(cond.copy())),
                                                 true=exp.Literal.number(1))], default=exp.Literal.number(0)))
    arg = agg.this
    if isinstance(arg, exp.Distinct):
        inner = [exp.Case(ifs=[exp.If(this=cond.copy(), true=e.copy())]) for e in arg.expressions]
        agg.set("this", exp.Distinct(expressions=inner))
    elif isinstance(arg, exp.Star) or arg is None:
        agg.set("this", exp.Case(ifs=[exp.If(this=cond.copy(), true=exp.Literal.number(1))]))
    else:
        agg.set("this", exp.Case(ifs=[exp.If(this=cond.copy(), true=arg.copy())]))
    return agg


def values_to_union(node: exp.Expr) -> exp.Expr:
    """`(VALUES (a, b), ...) AS p(x, y)` -> `(SELECT a AS x, b AS y UNION ALL ...) AS p` (no column list needed)."""
    if not isinstance(node, exp.Values):
        return node
    alias = node.args.get("alias")
    names = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
    selects = []
    for row in node.expressions:
        values = row.expressions if isinstance(row, exp.Tuple) else [row]
        selects.append(exp.select(*[exp.alias_(v.copy(), n, quoted=True) if n else v.copy()
                                    for v, n in zip(values, names or [""] * len(values), strict=True)]))
    union: exp.Expr = selects[0]
    for other in selects[1:]:
        union = exp.union(union, other, distinct=False)
    table_alias = exp.TableAlias(this=alias.this.copy()) if isinstance(alias, exp.TableAlias) else None
    return exp.Subquery(this=union, alias=table_alias)


def count_if_to_sum(node: exp.Expr) -> exp.Expr:
    """`count_if(c)` -> `sum(CASE WHEN c THEN 1 ELSE 0 END)`."""
    if isinstance(node, exp.CountIf):
        return exp.Sum(this=exp.Case(ifs=[exp.If(this=node.this.copy(), true=exp.Literal.number(1))],
                                     default=exp.Literal.number(0)))
    if isinstance(node, exp.ApproxDistinct):  # exact is fine: approximating is an optimisation
        return exp.Count(this=exp.Distinct(expressions=[node.this.copy()]))
    return node


def refuse_unsupported(tree: exp.Expr, dialect: str) -> None:
    """Raise EngineError for what the compiled trees may hold but this database cannot compute in place."""
    name = _NAMES.get(dialect, dialect)
    for node in tree.walk():
        if isinstance(node, exp.Median | exp.PercentileCont):
            raise EngineError(msg("median() and quantile_cont() are not supported on tables computed in place on "
                                  "{database}. Fix: copy the table into the warehouse (`mode: copy`)", database=name))
        if isinstance(node, exp.AtTimeZone):
            raise EngineError(msg("time zone conversions are not supported on tables computed in place on "
                                  "{database}: the model's time column must be a naive timestamp in the workspace's "
                                  "time zone. Fix: remove the model's `timezone:`, or copy the table (`mode: copy`)",
                                  database=name))


def to_arrow(names: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    """Rows as an Arrow table: decimals as floats, the compiler's date columns as dates."""
    if not names:
        return pa.table({})
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for name, col in zip(names, columns, strict=True):
        values: list[Any] = [float(v) if isinstance(v, Decimal) else v for v in col]
        if name in DATE_COLUMNS:
            values = [date.fromisoformat(v) if isinstance(v, str) and _ISO_DATE.match(v) else v for v in values]
        arrays.append(pa.array(values))
    return pa.table(dict(zip(names, arrays, strict=True)))


class DbApiEngine:
    """Runs rewritten compiled trees on a DB-API connection; subclasses set the dialect and the rewrites."""

    dialect = ""
    label = ""
    errors: tuple[type[BaseException], ...] = ()
    rewrites: tuple[Callable[[exp.Expr], exp.Expr], ...] = ()

    def __init__(self, con: Any):
        self.con = con
        self.allowed_tables: frozenset[str] | None = None
        self._lock = threading.RLock()

    def rewrite(self, tree: exp.Expr) -> exp.Expr:
        tree = tree.copy()
        refuse_unsupported(tree, self.dialect)
        for fn in self.rewrites:
            tree = tree.transform(fn)
        return tree

    def text(self, sql: exp.Expr | str) -> str:
        return self.rewrite(sql).sql(dialect=self.dialect) if isinstance(sql, exp.Expr) else sql

    def query(self, sql: exp.Expr | str) -> pa.Table:
        text = self.text(sql)
        if isinstance(sql, exp.Expr):
            if self.allowed_tables is None:
                self.allowed_tables = frozenset(self.tables())
            check_emitted(text, self.dialect, self.allowed_tables)
        with self._lock:
            cur = self.con.cursor()
            try:
                cur.execute(text)
                names = [d[0] for d in cur.description or []]
                rows = [tuple(r) for r in cur.fetchall()]
            except self.errors as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                raise EngineError(msg("{database} rejected a generated query: {reason}\nSQL: {sql}",
                                      database=self.label, reason=first, sql=text)) from None
            finally:
                cur.close()
        return to_arrow(names, rows)

    def columns(self, table: str) -> dict[str, str]:  # in place, the columns come from the source's catalog
        return {}

    # The tables of the database the connection is on (what a query may read when no mapping narrows it).
    catalog_query = ""

    def tables(self) -> list[str]:
        if not self.catalog_query:
            return []
        with self._lock:
            cur = self.con.cursor()
            try:
                cur.execute(self.catalog_query)
                return [str(r[0]) for r in cur.fetchall()]
            finally:
                cur.close()
