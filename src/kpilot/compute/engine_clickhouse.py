"""ClickHouse as an engine: in-process (chDB, over Parquet files) or a server (clickhouse-connect).

The compiled trees are generated in SQLGlot's clickhouse dialect after a few rewrites: `EXTRACT(isodow ...)`
becomes `toDayOfWeek(d)` (1 = Monday), and `median(x)` / `quantile_cont(x, q)` become
`quantileExactInclusive(q)(x)`, ClickHouse's exact quantile with linear interpolation (its own `median` is an
estimate). A division is in doubles, as DuckDB's (a division by zero: +-Infinity or NaN). `(VALUES ...)`
becomes a UNION ALL. Naive times are read as they are written (chDB: a session at
UTC; a server: its own time zone); an instant (a `DateTime` with a time zone of its own, a UTC-adjusted Parquet
time) is shown in the workspace's time zone as wall-clock time; a model's own `timezone:` is refused. Results
come back as Arrow, decimals as floats.

A chDB table is a view over its file (`file(path, Parquet)`); the generated queries read those views only
(check_emitted), so a definition can never reach `file()`, `url()` or another table function itself.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from kpilot.compute.engine import EngineError, check_emitted
from kpilot.compute.engine_dbapi import values_to_union
from kpilot.compute.engine_mysql import is_isodow
from kpilot.model.errors import KpilotError, msg

SCHEMA = "kpilot"  # chDB: the database holding the views over the files

_TYPES = {"String": "VARCHAR", "FixedString": "VARCHAR", "Float64": "DOUBLE", "Float32": "FLOAT",
          "Int64": "BIGINT", "Int32": "INTEGER", "Int16": "SMALLINT", "Int8": "TINYINT", "UInt64": "BIGINT",
          "UInt32": "BIGINT", "UInt16": "INTEGER", "UInt8": "SMALLINT", "Bool": "BOOLEAN", "Date": "DATE",
          "Date32": "DATE", "DateTime": "TIMESTAMP", "DateTime64": "TIMESTAMP", "Decimal": "DECIMAL",
          "Enum8": "VARCHAR", "Enum16": "VARCHAR", "UUID": "VARCHAR"}


def warehouse_type(ch_type: str) -> str:
    """A ClickHouse column type in the warehouse's names (`Nullable(Float64)` -> DOUBLE)."""
    text = ch_type.strip()
    while text.endswith(")") and text.startswith(("Nullable(", "LowCardinality(")):
        text = text.split("(", 1)[1][:-1]
    base = text.split("(", 1)[0]
    if base in ("DateTime", "DateTime64") and "'" in text:  # a time zone of its own: an instant
        return "TIMESTAMP WITH TIME ZONE"
    return _TYPES.get(base, text.upper())


def _quantile(level: exp.Expr, column: exp.Expr) -> exp.Expr:
    # SQLGlot writes `expressions` in the first parentheses: the parameters, as ClickHouse reads them.
    return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[level], params=[column])


def float_division(node: exp.Div) -> exp.Div:
    """`a / b` in doubles, as DuckDB divides (decimals and integers alike): a division by zero is +-Infinity or
    NaN, where ClickHouse fails a decimal one."""
    double = exp.DataType.build("DOUBLE")
    return exp.Div(this=exp.cast(node.this.copy(), double), expression=exp.cast(node.expression.copy(), double))


def clickhouse_tree(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Div):
        return float_division(node)
    if is_isodow(node):
        return exp.Anonymous(this="toDayOfWeek", expressions=[node.expression.copy()])
    if isinstance(node, exp.Median):
        return _quantile(exp.Literal.number(0.5), node.this.copy())
    if isinstance(node, exp.PercentileCont):  # quantile_cont(x, q): this = x, expression = q
        return _quantile(node.expression.copy(), node.this.copy())
    return node


def local_wall_clock(node: exp.Expr) -> exp.Expr:
    """`instant AT TIME ZONE tz` (a time with a time zone, as a naive time in tz) -> the wall-clock time there:
    `toDateTime64(toString(x, tz), 6)`, read back in the session's time zone as every naive time is."""
    if isinstance(node, exp.AtTimeZone) and not isinstance(node.this, exp.AtTimeZone):
        text = exp.Anonymous(this="toString", expressions=[node.this.copy(), node.args["zone"].copy()])
        return exp.Anonymous(this="toDateTime64", expressions=[text, exp.Literal.number(6)])
    return node


def _refuse(tree: exp.Expr) -> None:
    # One conversion (an instant shown in the workspace's time zone) is rewritten; a naive time in a model's
    # own time zone (two) is refused, as `kpilot validate` does.
    if any(isinstance(n.this, exp.AtTimeZone) for n in tree.find_all(exp.AtTimeZone)):
        raise EngineError(msg("time zone conversions are not supported on tables computed in place on {database}: "
                              "the model's time column must be a naive timestamp in the workspace's time zone. "
                              "Fix: remove the model's `timezone:`", database="ClickHouse"))


def _floats(table: pa.Table) -> pa.Table:
    """Decimals as floats, as every engine returns them."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    return table


def parquet_times(path: Path) -> dict[str, str]:
    """The time columns of Parquet files as written: naive, or instants (UTC-adjusted). ClickHouse reads both as
    `DateTime64(6, 'UTC')`; kpilot reads a naive time as it is written and an instant in the workspace's time
    zone, as on the warehouse."""
    import pyarrow.dataset as ds

    schema = ds.dataset(str(path), format="parquet").schema
    return {f.name: "TIMESTAMP WITH TIME ZONE" if f.type.tz else "TIMESTAMP" for f in schema
            if pa.types.is_timestamp(f.type)}


def file_pattern(path: Path) -> str:
    """What ClickHouse's file() reads: the file, or every Parquet file under the folder."""
    return str(path / "**" / "*.parquet") if path.is_dir() else str(path)


class _ClickHouse:
    """What the chDB and server engines share: the rewrites, the check, the Arrow result."""

    dialect = "clickhouse"
    label = "ClickHouse"

    def __init__(self) -> None:
        self.allowed_tables: frozenset[str] | None = None
        self._lock = threading.RLock()

    def text(self, sql: exp.Expr | str) -> str:
        if not isinstance(sql, exp.Expr):
            return sql
        tree = sql.copy()
        _refuse(tree)
        tree = tree.transform(values_to_union).transform(clickhouse_tree).transform(local_wall_clock)
        return tree.sql(dialect=self.dialect)

    def _run(self, text: str) -> pa.Table:  # pragma: no cover - each engine runs its own
        raise NotImplementedError

    def query(self, sql: exp.Expr | str) -> pa.Table:
        text = self.text(sql)
        if isinstance(sql, exp.Expr):
            if self.allowed_tables is None:
                self.allowed_tables = frozenset(self.tables())
            check_emitted(text, self.dialect, self.allowed_tables)
        with self._lock:
            return _floats(self._run(text))

    def _rejected(self, exc: BaseException, text: str) -> EngineError:
        first = (str(exc).strip().splitlines() or [""])[0]
        return EngineError(msg("{database} rejected a generated query: {reason}\nSQL: {sql}", database=self.label,
                               reason=first[:500], sql=text))

    def tables(self) -> list[str]:
        return []


class ChDBEngine(_ClickHouse):
    """ClickHouse in-process (chDB): each table a view over its Parquet file, in the database `kpilot`."""

    label = "chDB"

    def __init__(self, files: Mapping[str, Path]):
        super().__init__()
        try:
            from chdb import session
        except ImportError:
            raise KpilotError(msg("a chdb source needs the chdb package. Fix: pip install 'kpilot[chdb]'")) from None
        factory: Any = session.Session  # chDB is untyped
        self._session: Any = factory()
        self._files = dict(files)
        try:
            self._session.query(f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
            for name, path in self._files.items():
                target = exp.table_(name, db=SCHEMA, quoted=True).sql(dialect="clickhouse")
                source = exp.Literal.string(file_pattern(path)).sql(dialect="clickhouse")
                self._session.query(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM file({source}, Parquet)")
            self._session.query("SET session_timezone = 'UTC'")
        except Exception as exc:
            self.close()
            first = (str(exc).strip().splitlines() or [""])[0]
            raise KpilotError(msg("chDB cannot read the tables' files: {reason}", reason=first[:500])) from None

    def _run(self, text: str) -> pa.Table:
        try:
            table = self._session.query(text, "ArrowTable")
        except Exception as exc:  # chDB raises plain RuntimeErrors
            raise self._rejected(exc, text) from None
        return table if isinstance(table, pa.Table) else pa.table({})

    def columns(self, table: str) -> dict[str, str]:
        target = exp.table_(table, db=SCHEMA, quoted=True).sql(dialect="clickhouse")
        with self._lock:
            try:
                described = self._session.query(f"DESCRIBE TABLE {target}", "ArrowTable")
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                raise KpilotError(msg("chDB cannot read the table {table}: {reason}", table=table,
                                      reason=first[:500])) from None
        rows = described.select(["name", "type"]).to_pylist()
        times = parquet_times(self._files[table])
        return {str(r["name"]): times.get(str(r["name"])) or warehouse_type(str(r["type"])) for r in rows}

    def tables(self) -> list[str]:
        return [f"{SCHEMA}.{name}" for name in self._files]

    def close(self) -> None:
        session = getattr(self, "_session", None)
        if session is not None:
            session.close()
            self._session = None


class ClickHouseEngine(_ClickHouse):
    """A ClickHouse server (clickhouse-connect, over HTTP), its tables named `database.table`."""

    def __init__(self, url: str, tables: Mapping[str, tuple[str, str]]):
        super().__init__()
        try:
            import clickhouse_connect
        except ImportError:
            raise KpilotError(msg("a clickhouse source needs clickhouse-connect. Fix: pip install "
                                  "'kpilot[clickhouse]'")) from None
        try:
            self.client: Any = clickhouse_connect.get_client(dsn=url)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise KpilotError(msg("cannot connect to the ClickHouse server: {reason}", reason=first[:300])) from None
        self._tables = dict(tables)

    def _run(self, text: str) -> pa.Table:
        try:
            table: pa.Table = self.client.query_arrow(text)
        except Exception as exc:
            raise self._rejected(exc, text) from None
        return table

    def columns(self, table: str) -> dict[str, str]:
        schema, name = self._tables[table]
        target = exp.table_(name, db=schema or None, quoted=True).sql(dialect="clickhouse")
        with self._lock:
            try:
                rows = self.client.query(f"DESCRIBE TABLE {target}").result_rows
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                raise KpilotError(msg("the ClickHouse server cannot describe the table {table}: {reason}",
                                      table=table, reason=first[:300])) from None
        return {str(r[0]): warehouse_type(str(r[1])) for r in rows}

    def tables(self) -> list[str]:
        return [f"{s}.{n}" if s else n for s, n in self._tables.values()]

    def close(self) -> None:
        self.client.close()
