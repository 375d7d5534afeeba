"""MySQL/MariaDB as an engine: the compiled trees, rewritten for what MySQL runs, in the mysql dialect.

MySQL has no `FILTER (WHERE ...)` (-> CASE WHEN inside the aggregate), no `EXTRACT(isodow ...)`
(-> `WEEKDAY(d) + 1`), no `date - integer` (-> `DATE_SUB(d, INTERVAL n DAY)`) and no bare `*` after
other columns (-> `t.*`). SQLGlot already writes
`DATE_TRUNC` as `STR_TO_DATE(CONCAT(YEAR(d), ...))`. Weeks are bucketed by the compiler's arithmetic on the
ISO day of the week, so they start on the workspace's week start.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kpilot.compute.engine_dbapi import DbApiEngine, count_if_to_sum, filter_to_case, values_to_union


def is_date_minus_days(node: exp.Expr) -> bool:
    """The compiler's week bucket: `CAST(x AS DATE) - CAST(n AS INT)`."""
    return (isinstance(node, exp.Sub) and isinstance(node.this, exp.Cast) and node.this.to.is_type("date")
            and isinstance(node.expression, exp.Cast) and node.expression.to.is_type(*exp.DataType.INTEGER_TYPES))


def is_isodow(node: exp.Expr) -> bool:
    return isinstance(node, exp.Extract) and node.this.name.lower() == "isodow"


def mysql_dates(node: exp.Expr) -> exp.Expr:
    if is_isodow(node):  # WEEKDAY: 0 = Monday
        weekday = exp.Anonymous(this="WEEKDAY", expressions=[node.expression.copy()])
        return exp.paren(exp.Add(this=weekday, expression=exp.Literal.number(1)))
    if is_date_minus_days(node):
        days = node.expression.copy().transform(mysql_dates)  # a replaced node's children are not visited
        return exp.DateSub(this=node.this.copy(), expression=days, unit=exp.var("DAY"))
    return node


def qualified_star(node: exp.Expr) -> exp.Expr:
    """`SELECT x, * FROM tbl AS t` -> `SELECT x, t.* FROM tbl AS t` (MySQL allows a bare `*` only first)."""
    if not isinstance(node, exp.Select) or not any(isinstance(e, exp.Star) for e in node.expressions[1:]):
        return node
    source = node.args["from_"].this if node.args.get("from_") else None
    if not isinstance(source, exp.Table | exp.Subquery) or not source.alias:
        return node
    node = node.copy()
    node.set("expressions", [exp.Column(this=exp.Star(), table=exp.to_identifier(source.alias))
                             if isinstance(e, exp.Star) else e for e in node.expressions])
    return node


class MySQLEngine(DbApiEngine):
    """Runs compiled metric queries on a MySQL or MariaDB connection (PyMySQL), autocommit and read-only."""

    catalog_query = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"

    dialect = "mysql"
    label = "MySQL/MariaDB"
    rewrites = (values_to_union, filter_to_case, count_if_to_sum, mysql_dates, qualified_star)

    def __init__(self, con: Any):
        import pymysql

        super().__init__(con)
        self.errors = (pymysql.Error,)
        with self._lock:
            con.rollback()  # the discovery's transaction
            con.autocommit(True)  # each query sees the rows committed when it starts
            cur = con.cursor()
            try:
                cur.execute("SET SESSION TRANSACTION READ ONLY")
            finally:
                cur.close()
