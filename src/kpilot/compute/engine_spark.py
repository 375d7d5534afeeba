"""Spark as an engine: the compiled trees, rewritten for what Spark SQL runs, in SQLGlot's spark dialect.

A session is local (`master: local[2]`) or remote (Spark Connect, `url: sc://host:15002`). A table is the
catalog's (`db.name`) or a file or folder (Parquet or Delta) registered as a temporary view of the engine's own
session, so that two workspaces in one process never see each other's views. Spark has no `EXTRACT(isodow ...)`
(-> `WEEKDAY(d) + 1`) nor `date - integer` (-> `DATE_SUB`); `quantile_cont(x, q)` becomes Spark's exact
`percentile(x, q)` (linear interpolation, as DuckDB's), and a division by zero gives +-Infinity or NaN as on
DuckDB (Spark's ANSI mode would fail the query). Time zone conversions are refused; the session's time
zone is the workspace's, so a timestamp's date is the workspace's date. Results come back per period as Arrow.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from kpilot.compute.engine import EngineError, check_emitted
from kpilot.compute.engine_clickhouse import _floats, float_division
from kpilot.compute.engine_dbapi import values_to_union
from kpilot.compute.engine_mysql import mysql_dates
from kpilot.model.errors import KpilotError, msg

_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT",
          "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP",
          "timestamp_ntz": "TIMESTAMP", "decimal": "DECIMAL"}

_sessions: dict[str, Any] = {}  # master or URL -> the process's root session (the JVM starts once)
_sessions_lock = threading.Lock()


@dataclass(frozen=True)
class SparkTable:
    """A table Spark reads: from its catalog (`name`: `db.table`), or a file or folder (`path`, `format`)."""

    name: str | None = None
    path: Path | None = None
    format: str = "parquet"


def warehouse_type(spark_type: str) -> str:
    """A Spark type (`simpleString`) in the warehouse's names (`decimal(12,2)` -> DECIMAL)."""
    return _TYPES.get(spark_type.split("(", 1)[0].lower(), spark_type.upper())


def _double(text: str) -> exp.Expr:
    return exp.cast(exp.Literal.string(text), exp.DataType.build("DOUBLE"))


def ieee_division(node: exp.Div) -> exp.Expr:
    """`a / b` as DuckDB computes it: in doubles, and a division by zero is +-Infinity or NaN (0 / 0), never the
    error Spark's ANSI mode raises, nor the NULL of its legacy mode."""
    a, b = node.this, node.expression
    by_zero = exp.Case(ifs=[
        exp.If(this=exp.GT(this=a.copy(), expression=exp.Literal.number(0)), true=_double("Infinity")),
        exp.If(this=exp.LT(this=a.copy(), expression=exp.Literal.number(0)), true=_double("-Infinity")),
        exp.If(this=exp.EQ(this=a.copy(), expression=exp.Literal.number(0)), true=_double("NaN"))])
    return exp.Case(ifs=[exp.If(this=exp.EQ(this=b.copy(), expression=exp.Literal.number(0)), true=by_zero)],
                    default=float_division(node))


def spark_tree(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Div):
        return ieee_division(node)
    if isinstance(node, exp.PercentileCont):  # quantile_cont(x, q): Spark's percentile is exact, interpolated
        return exp.Anonymous(this="PERCENTILE", expressions=[node.this.copy(), node.expression.copy()])
    return mysql_dates(node)


_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


@contextmanager
def _quiet() -> Iterator[None]:
    """PySpark warns that it does not fully support pandas 3: kpilot reads results as Arrow, never as pandas."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _log_settings() -> str:
    """A log4j2 file for the local JVM, in a folder of this process's own: errors only (Spark's defaults print
    its start-up warnings)."""
    path = Path(tempfile.mkdtemp(prefix="kpilot-spark-")) / "log4j2.properties"
    path.write_text(_LOG4J, encoding="utf-8")
    return str(path)


def root_session(master: str | None, url: str | None) -> Any:
    """The process's Spark session for a master, started on first use; for a Spark Connect URL, a new session (cheap:
    no JVM here), which its engine stops when it closes (a Connect client left open keeps the process alive)."""
    key = url or master or ""
    with _sessions_lock:
        session = _sessions.get(key)
        if session is not None:
            return session
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise KpilotError(msg("a spark source needs pyspark. Fix: pip install 'kpilot[spark]'")) from None
        try:
            with _quiet():
                if url:
                    # Spark Connect's own session class: the classic builder refuses a remote session in a process
                    # that already runs a local one (a workspace may have both kinds of source).
                    from pyspark.sql.connect.session import SparkSession as ConnectSession

                    return ConnectSession.builder.remote(url).create()
                else:
                    # A local session listens on loopback only, shows no web UI, and logs errors only.
                    session = (SparkSession.builder.master(master or "local[2]").appName("kpilot")
                               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                               .config("spark.driver.bindAddress", "127.0.0.1")
                               .config("spark.driver.host", "127.0.0.1")
                               .config("spark.sql.shuffle.partitions", "4")
                               .config("spark.driver.extraJavaOptions",
                                       f"-Dlog4j2.configurationFile={_log_settings()}")
                               .getOrCreate())
                    session.sparkContext.setLogLevel("ERROR")
            # PySpark logs each failed query with its Java stack; kpilot reports the failure itself.
            for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
                logging.getLogger(name).disabled = True
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise KpilotError(msg("cannot start the Spark session ({where}): {reason}. Fix: check `master:` or "
                                  "`url:`, and that Java 17 or later is installed (JAVA_HOME)", where=key,
                                  reason=first[:300])) from None
        _sessions[key] = session
        return session


class SparkEngine:
    """Runs compiled metric queries on a Spark session of its own (its temporary views are its tables)."""

    dialect = "spark"
    label = "Spark"

    def __init__(self, session: Any, tables: Mapping[str, SparkTable], timezone: str = "UTC", *,
                 own: bool = False):
        # A session of its own: the same JVM, its own temporary views and settings; or, with `own` (a Spark Connect
        # session made for this engine), that session itself, stopped when the engine closes.
        self._own = own
        if own:
            self.session = session
        else:
            try:
                self.session = session.newSession()
            except Exception:
                self.session = session
        self.session.conf.set("spark.sql.session.timeZone", timezone)
        self._tables = dict(tables)
        self.allowed_tables: frozenset[str] | None = None
        self._lock = threading.RLock()
        for name, table in self._tables.items():
            if table.path is not None:
                self._register(name, table)

    def _register(self, name: str, table: SparkTable) -> None:
        assert table.path is not None
        try:
            reader = self.session.read.format(table.format)
            with _quiet():
                reader.load(str(table.path)).createOrReplaceTempView(name)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            hint = (msg(" Delta tables need Delta Lake on the Spark session (the delta-spark package and its "
                        "settings).") if table.format == "delta" else "")
            raise KpilotError(msg("Spark cannot read the table {table} from {path} ({format}): {reason}.{hint}",
                                  table=name, path=str(table.path), format=table.format, reason=first[:300],
                                  hint=hint)) from None

    def mapping(self) -> dict[str, tuple[str, str]]:
        """Warehouse table -> (database, table) as Spark names it (a file's view: no database)."""
        out: dict[str, tuple[str, str]] = {}
        for name, table in self._tables.items():
            if table.path is not None or not table.name:
                out[name] = ("", name)
            else:
                db, _, short = table.name.rpartition(".")
                out[name] = (db, short)
        return out

    def text(self, sql: exp.Expr | str) -> str:
        if not isinstance(sql, exp.Expr):
            return sql
        tree = sql.copy()
        if any(tree.find_all(exp.AtTimeZone)):
            raise EngineError(msg("time zone conversions are not supported on tables computed in place on "
                                  "{database}: the model's time column must be a naive timestamp in the workspace's "
                                  "time zone. Fix: remove the model's `timezone:`", database=self.label))
        return tree.transform(values_to_union).transform(spark_tree).sql(dialect=self.dialect)

    def query(self, sql: exp.Expr | str) -> pa.Table:
        text = self.text(sql)
        if isinstance(sql, exp.Expr):
            if self.allowed_tables is None:
                self.allowed_tables = frozenset(self.tables())
            check_emitted(text, self.dialect, self.allowed_tables)
        with self._lock:
            try:
                with _quiet():
                    table = self.session.sql(text).toArrow()
            except Exception as exc:  # Spark's AnalysisException and the JVM's errors
                first = (str(exc).strip().splitlines() or [""])[0]
                raise EngineError(msg("{database} rejected a generated query: {reason}\nSQL: {sql}",
                                      database=self.label, reason=first[:500], sql=text)) from None
        return _floats(table)

    def columns(self, table: str) -> dict[str, str]:
        db, name = self.mapping()[table]
        target = f"{db}.{name}" if db else name
        with self._lock:
            try:
                with _quiet():
                    fields = self.session.table(target).schema.fields
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                raise KpilotError(msg("Spark cannot read the table {table}: {reason}", table=target,
                                      reason=first[:300])) from None
        return {f.name: warehouse_type(f.dataType.simpleString()) for f in fields}

    def tables(self) -> list[str]:
        return [f"{db}.{name}" if db else name for db, name in self.mapping().values()]

    def close(self) -> None:
        try:
            for name, table in self._tables.items():
                if table.path is not None:
                    self.session.catalog.dropTempView(name)
        finally:
            if self._own:
                self.session.stop()
