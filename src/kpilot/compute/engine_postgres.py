"""PostgreSQL as an engine: the same compiled trees, generated in the postgres dialect.

Compute where the data lives: metrics over tables in PostgreSQL run there; only the per-period
results come back. The connection is opened from a URL (libpq conninfo or postgresql://...).
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa
from sqlglot import exp

from kpilot.compute.engine import EngineError, check_emitted
from kpilot.model.errors import KpilotError, msg

_TYPES = {
    "double precision": "DOUBLE", "real": "FLOAT", "numeric": "DECIMAL", "integer": "INTEGER",
    "bigint": "BIGINT", "smallint": "SMALLINT", "text": "VARCHAR", "character varying": "VARCHAR",
    "character": "VARCHAR", "boolean": "BOOLEAN", "date": "DATE",
    "timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
}


class PostgresEngine:
    """Runs compiled metric queries on a PostgreSQL database (schema `public` by default)."""

    dialect = "postgres"

    def __init__(self, url: str, schema: str = "public"):
        try:
            import psycopg
        except ImportError:  # pragma: no cover - psycopg is a dependency of the postgres extra
            raise KpilotError(msg("the PostgreSQL engine needs psycopg: pip install 'kpilot[postgres]'")) from None
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise KpilotError(msg("cannot connect to PostgreSQL at {url}: {reason}", url=url,
                                  reason=str(exc).strip())) from None
        self.schema = schema
        self.allowed_tables: frozenset[str] | None = None
        self._lock = threading.RLock()

    @classmethod
    def on_connection(cls, conn: Any, schema: str = "public") -> PostgresEngine:
        """An engine on an open psycopg connection (whoever opened it keeps its URL and its errors)."""
        engine = cls.__new__(cls)
        engine.conn, engine.schema, engine._lock = conn, schema, threading.RLock()
        engine.allowed_tables = None
        return engine

    def _rows(self, text: str, params: tuple[Any, ...] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        import psycopg

        with self._lock, self.conn.cursor() as cur:
            try:
                cur.execute(text, params)
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0]
                raise EngineError(msg("PostgreSQL rejected a generated query: {reason}\nSQL: {sql}", reason=first,
                                      sql=text)) from None
            names = [d.name for d in cur.description or []]
            return names, cur.fetchall()

    def query(self, sql: exp.Expr | str) -> pa.Table:
        text = sql.sql(dialect=self.dialect) if isinstance(sql, exp.Expr) else sql
        if isinstance(sql, exp.Expr):
            if self.allowed_tables is None:
                self.allowed_tables = frozenset(self.tables())
            check_emitted(text, self.dialect, self.allowed_tables)
        names, rows = self._rows(text)
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        arrays = []
        for col in columns:
            values = [float(v) if v.__class__.__name__ == "Decimal" else v for v in col]
            arrays.append(pa.array(values))
        return pa.table(dict(zip(names, arrays, strict=True))) if names else pa.table({})

    def columns(self, table: str) -> dict[str, str]:
        _, rows = self._rows(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s ORDER BY ordinal_position", (self.schema, table))
        return {name: _TYPES.get(typ, typ.upper()) for name, typ in rows}

    def tables(self) -> list[str]:
        _, rows = self._rows("SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
                             (self.schema,))
        return [r[0] for r in rows]

    def close(self) -> None:
        self.conn.close()
