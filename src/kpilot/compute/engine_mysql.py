"""MySQL/MariaDB as an engine: the compiled trees, rewritten for what MySQL runs, in the mysql dialect.

MySQL has no `FILTER (WHERE ...)` (-> CASE WHEN inside the aggregate), no `EXTRACT(isodow ...)`
(-> `WEEKDAY(d) + 1`) and no `date - integer` (-> `DATE_SUB(d, INTERVAL n DAY)`). SQLGlot already writes
`DATE_TRUNC` as `STR_TO_DATE(CONCAT(YEAR(d), ...))`. Weeks are bucketed by the compiler's arithmetic on the
ISO day of the week, so they start on the workspace's week start.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kpilot.compute.engine_dbapi import DbApiEngine, count_if_to_sum, filter_to_case


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


class MySQLEngine(DbApiEngine):
    """Runs compiled metric queries on a MySQL or MariaDB connection (PyMySQL), autocommit and read-only."""

    dialect = "mysql"
    label = "MySQL/MariaDB"
    rewrites = (filter_to_case, count_if_to_sum, mysql_dates)

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
