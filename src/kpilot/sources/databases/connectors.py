"""SQL database connectors: PostgreSQL (psycopg), MySQL/MariaDB (PyMySQL), SQLite (sqlite3), DuckDB files.

Every value goes to the database as a query parameter; identifiers are quoted by the database's rules.
Connection URLs hold passwords: they live in `Secret`s, and errors never quote them.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv

from kpilot.model.errors import Message, msg
from kpilot.model.workspace import Source
from kpilot.sources import paths
from kpilot.sources.base import Column, Connector, SourceTableInfo, SyncError, arrow_type, quote_ident, rows_to_arrow
from kpilot.sources.secrets import Secret, source_url

# --- column types -------------------------------------------------------------------------------


def warehouse_type(source_type: str) -> str:
    """The DuckDB type a column of the given database type is copied as (text when in doubt)."""
    t = source_type.strip().lower()
    decimal = re.match(r"^(?:numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", t)
    if decimal:
        p, s = int(decimal.group(1)), int(decimal.group(2) or 0)
        return f"DECIMAL({p},{s})" if 0 < p <= 38 and s <= p else "DOUBLE"
    if t.startswith(("tinyint(1)", "bool")):
        return "BOOLEAN"
    head = t.split("(")[0].strip()  # "enum('print', ...)" is no integer
    if "int" in head and "interval" not in head and "point" not in head:
        return "DECIMAL(20,0)" if "bigint" in t and "unsigned" in t else "BIGINT"
    if t.startswith(("numeric", "decimal", "real", "float", "double")):
        return "DOUBLE"
    if t == "date":
        return "DATE"
    if t.startswith(("timestamp", "datetime")):
        return "TIMESTAMPTZ" if "with time zone" in t or t == "timestamptz" else "TIMESTAMP"
    if t.startswith("time") and "with time zone" not in t:
        return "TIME"
    if t in ("bytea", "blob", "binary", "varbinary", "longblob", "mediumblob", "tinyblob"):
        return "BLOB"
    return "VARCHAR"


# --- DB-API connectors --------------------------------------------------------------------------


class _DbApiConnector:
    """What PostgreSQL, MySQL and SQLite share: discovery from a catalog query, reads through a cursor."""

    placeholder = "%s"
    quote_char = '"'

    def __init__(self, source: Source):
        self.source = source
        self._con: Any = None

    # Each database fills these in.
    def _connect(self) -> Any:
        raise NotImplementedError

    catalog_sql = ""  # (schema, table, column, type) of every readable column, in column order

    def _catalog(self, con: Any) -> list[tuple[str, str, str, str]]:
        cur = con.cursor()
        try:
            cur.execute(self.catalog_sql)
            return [(str(a), str(b), str(c), str(d or "")) for a, b, c, d in cur.fetchall()]
        finally:
            cur.close()

    def _cursor(self, con: Any) -> Any:
        return con.cursor()

    def failed(self, exc: BaseException, doing: Message) -> SyncError:
        return SyncError(msg("source '{source}': {doing} failed: {reason}", source=self.source.key, doing=doing,
                             reason=self.scrub(_first_line(exc))))

    def scrub(self, text: str) -> str:
        return text

    @property
    def con(self) -> Any:
        if self._con is None:
            self._con = self._connect()
        return self._con

    def quote(self, name: str) -> str:
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def discover(self) -> list[SourceTableInfo]:
        try:
            rows = self._catalog(self.con)
        except SyncError:
            raise
        except Exception as exc:
            raise self.failed(exc, msg("listing the tables")) from None
        tables: dict[tuple[str, str], list[Column]] = {}
        for schema, table, column, typ in rows:
            tables.setdefault((schema, table), []).append(Column(column, typ, warehouse_type(typ)))
        return [SourceTableInfo(s, t, tuple(cols)) for (s, t), cols in tables.items()]

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        sql, params = select_sql(table, cursor, after, inclusive, self.quote, self.placeholder)
        try:
            cur = self._cursor(self.con)
            cur.execute(sql, params)
            while True:
                rows = cur.fetchmany(batch_size)
                if not rows:
                    break
                yield rows_to_arrow(table.columns, rows)
            cur.close()
        except SyncError:
            raise
        except Exception as exc:
            raise self.failed(exc, msg("reading table {table}", table=table.qualified)) from None

    def close(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            finally:
                self._con = None


def select_sql(table: SourceTableInfo, cursor: str | None, after: Any, inclusive: bool,
               quote: Callable[[str], str], placeholder: str) -> tuple[str, list[Any]]:
    """The query reading a table (in cursor order, past `after`), and its parameters."""
    names = ", ".join(quote(c.name) for c in table.columns)
    where = f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)
    sql = f"SELECT {names} FROM {where}"
    params: list[Any] = []
    if cursor is not None:
        c = quote(cursor)
        if after is None:
            sql += f" WHERE {c} IS NOT NULL"
        else:
            sql += f" WHERE {c} {'>=' if inclusive else '>'} {placeholder}"
            params.append(after)
        sql += f" ORDER BY {c}"
    return sql, params


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


class _ServerConnector(_DbApiConnector):
    """A database server reached with a URL, which holds the password."""

    def __init__(self, source: Source, url: Secret):
        super().__init__(source)
        self.url = url

    def scrub(self, text: str) -> str:
        return self.url.scrub(text)


class PostgresConnector(_ServerConnector):
    catalog_sql = (
        "SELECT c.table_schema, c.table_name, c.column_name, "
        "CASE WHEN c.data_type = 'numeric' AND c.numeric_precision IS NOT NULL "
        "THEN 'numeric(' || c.numeric_precision || ',' || c.numeric_scale || ')' ELSE c.data_type END "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY c.table_schema, c.table_name, c.ordinal_position")

    def __init__(self, source: Source, url: Secret):
        super().__init__(source, url)
        self._named = 0
        self.search_path: tuple[str, ...] = ()

    def _connect(self) -> Any:
        import psycopg

        try:
            con = psycopg.connect(self.url.reveal(), connect_timeout=10)
        except Exception as exc:
            raise connect_failed(self.source, self.url, exc) from None
        con.read_only = True
        return con

    def _cursor(self, con: Any) -> Any:
        # A server-side cursor: the rows stream in batches instead of all landing in memory.
        self._named += 1
        return con.cursor(name=f"kpilot_sync_{self._named}")

    def _catalog(self, con: Any) -> list[tuple[str, str, str, str]]:
        rows = super()._catalog(con)
        cur = con.cursor()
        try:
            # A bare table name resolves as PostgreSQL itself would: through the connection's search path.
            cur.execute("SELECT unnest(current_schemas(false))")
            self.search_path = tuple(str(r[0]) for r in cur.fetchall())
        finally:
            cur.close()
        con.rollback()  # end the read-only transaction the catalog queries opened
        return rows

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        if all(_copyable(c) for c in table.columns):
            return self._copy(table, cursor, after, inclusive, batch_size)
        return super().read(table, cursor, after, inclusive=inclusive, batch_size=batch_size)

    def _copy(self, table: SourceTableInfo, cursor: str | None, after: Any, inclusive: bool,
              batch_size: int) -> Iterator[pa.Table]:
        """The rows through `COPY (SELECT ...) TO STDOUT` as CSV, parsed by pyarrow with the warehouse types.

        Only for tables whose every column has a text form that parses to the value the cursor path reads
        (see _COPY_TYPES): far fewer Python objects per row. The parameter is bound by psycopg, client-side.
        """
        select, params = select_sql(table, cursor, after, inclusive, self.quote, self.placeholder)
        schema = pa.schema([(c.name, arrow_type(c.type)) for c in table.columns])
        names = [f"c{i}" for i in range(len(table.columns))]  # pyarrow's names; any column name is safe
        read_options = pa_csv.ReadOptions(column_names=names)
        # PostgreSQL writes NULL as nothing and an empty text as "": keep the two apart. One line per row,
        # but a text may hold line breaks, and a one-column row of NULL is an empty line.
        parse_options = pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
        convert_options = pa_csv.ConvertOptions(
            column_types=dict(zip(names, schema.types, strict=True)), null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"])

        def parsed(block: bytearray) -> pa.Table:
            try:
                t = pa_csv.read_csv(pa.py_buffer(block), read_options=read_options, parse_options=parse_options,
                                    convert_options=convert_options)
            except pa.ArrowInvalid as exc:  # "In CSV column #2: ...": name the column
                found = re.match(r"In CSV column #(\d+): (?:CSV conversion error to )?(.*)", str(exc))
                if found is None or int(found.group(1)) >= len(table.columns):
                    raise
                column = table.columns[int(found.group(1))]
                raise ValueError(f"column {column.name} ({column.source_type}): {found.group(2)}") from None
            return t.rename_columns(schema.names)

        import psycopg

        done = False
        try:
            con = self.con
            with con.cursor() as cur:
                # Text forms that do not depend on the server's settings: ISO dates, UTC, exact floats.
                cur.execute("SET LOCAL DateStyle = 'ISO, YMD'")
                cur.execute("SET LOCAL TimeZone = 'UTC'")
                cur.execute("SET LOCAL extra_float_digits = 3")
            # COPY takes no server-side parameter: psycopg binds it client-side, as cursor.copy() would.
            query = psycopg.ClientCursor(con).mogrify(
                f"COPY ({select}) TO STDOUT (FORMAT csv, ENCODING 'UTF8')", params or None)
            # Straight through libpq: psycopg's Copy object costs several Python calls per row.
            pgconn, encoding = con.pgconn, con.info.encoding
            pgconn.send_query(query.encode(encoding))
            first = pgconn.get_result()
            if first is None or first.status != psycopg.pq.ExecStatus.COPY_OUT:
                raise psycopg.OperationalError(_drain(pgconn, first, encoding) or "COPY did not start")
            block = bytearray()
            get = pgconn.get_copy_data
            while True:
                size, row = get(0)  # waits for the next row; PostgreSQL sends whole rows, one per message
                if size < 0:
                    break
                block += row  # one growing buffer: a million small objects kept alive cost far more
                if len(block) >= _COPY_BLOCK:
                    yield from _slices(parsed(block), batch_size)
                    block = bytearray()
            error = _drain(pgconn, None, encoding)
            if size == -2 or error:
                raise psycopg.OperationalError(error or pgconn.error_message.decode(encoding, "replace"))
            done = True
            if block:
                yield from _slices(parsed(block), batch_size)
        except SyncError:
            raise
        except Exception as exc:  # psycopg's errors, and pyarrow's for a value that does not parse
            raise self.failed(exc, msg("reading table {table}", table=table.qualified)) from None
        finally:
            if done:
                with contextlib.suppress(Exception):  # end the transaction and its SET LOCAL settings
                    self.con.rollback()
            else:
                # Stopped inside the COPY (an error, or the caller gave up): the connection is mid-protocol,
                # so it is dropped; the next read connects again.
                with contextlib.suppress(Exception):
                    self.close()


def _drain(pgconn: Any, result: Any, encoding: str) -> str | None:
    """Read `result` and every result left on a libpq connection; their error messages, if any."""
    from psycopg import pq

    errors = []
    while True:
        if result is not None and result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            primary = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or result.error_message
            errors.append(primary.decode(encoding, "replace").strip() or str(result.status))
        result = pgconn.get_result()
        if result is None:
            return "; ".join(errors) or None


# PostgreSQL types (as the catalog query names them) whose CSV text pyarrow reads as the value psycopg gives.
# Others (json, arrays, intervals, bytea, user types...) keep the cursor path and its conversions.
_COPY_TYPES = frozenset({
    "smallint", "integer", "bigint", "real", "double precision", "numeric", "boolean", "date",
    "timestamp without time zone", "timestamp with time zone", "time without time zone", "text",
    "character varying", "character"})
_COPY_BLOCK = 4 << 20  # bytes of CSV parsed at once: a few MB keeps pyarrow's threads busy and memory small


def _copyable(column: Column) -> bool:
    t = column.source_type.lower()
    return t in _COPY_TYPES or t.startswith("numeric(")


def _slices(table: pa.Table, size: int) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, size):
        yield table.slice(start, size)


class MySQLConnector(_ServerConnector):
    quote_char = "`"
    catalog_sql = (
        "SELECT table_schema, table_name, column_name, column_type FROM information_schema.columns "
        "WHERE table_schema = COALESCE(DATABASE(), table_schema) "
        "AND table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') "
        "ORDER BY table_schema, table_name, ordinal_position")

    def _connect(self) -> Any:
        try:
            import pymysql
        except ImportError:
            raise SyncError(msg("source '{source}': MySQL and MariaDB need the PyMySQL driver. Fix: "
                                "pip install 'kpilot[mysql]'.", source=self.source.key)) from None
        try:
            parts = urlsplit(self.url.reveal())
            database = unquote(parts.path.lstrip("/"))
            return pymysql.connect(
                host=parts.hostname or "127.0.0.1", port=parts.port or 3306, user=unquote(parts.username or ""),
                password=unquote(parts.password or ""), database=database or None, charset="utf8mb4",
                connect_timeout=10)
        except Exception as exc:
            raise connect_failed(self.source, self.url, exc) from None

    def _cursor(self, con: Any) -> Any:
        import pymysql.cursors

        return con.cursor(pymysql.cursors.SSCursor)  # unbuffered: rows stream from the server


class SQLiteConnector(_DbApiConnector):
    placeholder = "?"
    catalog_sql = ("SELECT '', m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p "
                   "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid")

    def __init__(self, source: Source, path: Path):
        super().__init__(source)
        self.path = path

    def _connect(self) -> Any:
        if not self.path.is_file():
            raise SyncError(missing_file(self.source, self.path))
        try:
            return sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise self.failed(exc, msg("opening {path}", path=self.source.path)) from None


class DuckDBConnector:
    """A DuckDB database file, opened read-only; its rows come out as Arrow without conversion."""

    def __init__(self, source: Source, path: Path):
        self.source = source
        self.path = path
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if not self.path.is_file():
                raise SyncError(missing_file(self.source, self.path))
            try:
                # Sandboxed as the warehouse is: the file itself and nothing else (no other file, no extension).
                self._con = duckdb.connect(str(self.path), read_only=True, config={
                    "enable_external_access": "false", "autoinstall_known_extensions": "false",
                    "autoload_known_extensions": "false", "lock_configuration": "true"})
            except duckdb.Error as exc:
                raise SyncError(msg("source '{source}': {path} could not be opened: {reason}. Fix: check that it "
                                    "is a DuckDB database and that no other program holds it open for writing.",
                                    source=self.source.key, path=self.source.path, reason=_first_line(exc))) from None
        return self._con

    def discover(self) -> list[SourceTableInfo]:
        rows = self.con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() ORDER BY table_schema, table_name, ordinal_position").fetchall()
        tables: dict[tuple[str, str], list[Column]] = {}
        for schema, table, column, typ in rows:
            tables.setdefault((schema, table), []).append(Column(column, typ, typ))
        return [SourceTableInfo(s, t, tuple(cols)) for (s, t), cols in tables.items()]

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        sql, params = select_sql(table, cursor, after, inclusive, quote_ident, "?")
        try:
            relation = self.con.sql(sql, params=params)
            if relation is None:
                return
            for batch in relation.to_arrow_reader(batch_size):
                yield pa.Table.from_batches([batch])
        except duckdb.Error as exc:
            raise SyncError(msg("source '{source}': reading table {table} failed: {reason}", source=self.source.key,
                                table=table.qualified, reason=_first_line(exc))) from None

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def missing_file(source: Source, path: Path) -> Message:
    return msg("source '{source}': database file '{path}' not found (kpilot looked for {full}). Fix: correct "
               "`path:`, relative to the workspace folder.", source=source.key, path=source.path, full=str(path))


def connect_failed(source: Source, url: Secret, exc: BaseException) -> SyncError:
    where = msg("the URL in ${var}", var=source.url_env) if source.url_env else msg("`url:`")
    return SyncError(msg(
        "source '{source}': cannot connect to the database: {reason}. Fix: check the server is running and the "
        "host, port, user, password and database in {where}.", source=source.key,
        reason=url.scrub(_first_line(exc)), where=where))


def connector_for(source: Source, base_dir: Path, environ: Mapping[str, str] | None = None,
                  secrets: Path | None = None) -> Connector:
    """The connector of a database source (not connected yet: the first discover or read connects)."""
    if source.type == "postgres":
        return PostgresConnector(source, source_url(source, environ, secrets))
    if source.type == "mysql":
        return MySQLConnector(source, source_url(source, environ, secrets))
    path = Path(base_dir, source.path or "").absolute()
    if source.type in ("sqlite", "duckdb") and not paths.readable(path, base_dir):
        raise SyncError(paths.outside(source.key, source.path or "", base_dir))
    if source.type == "sqlite":
        return SQLiteConnector(source, path)
    if source.type == "duckdb":
        return DuckDBConnector(source, path)
    raise SyncError(msg("source '{source}' is of type {type}, which has no connector yet.", source=source.key,
                        type=source.type))
