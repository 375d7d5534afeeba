"""What the SaaS connectors share: objects as typed rows, options, and the Connector plumbing.

An API object becomes one row: its fields are converted to the warehouse types the connector declares
(text timestamps to TIMESTAMP in UTC, numbers in text to DOUBLE...). A field the API stops sending
becomes NULL; a field it starts sending is ignored until the workspace asks for it (a new column
changes the table's shape, and the next sync copies the table afresh).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from kpilot.model.errors import msg
from kpilot.model.workspace import Source
from kpilot.sources.base import Column, SourceTableInfo, SyncError, rows_to_arrow
from kpilot.sources.saas.http import HttpClient, source_token
from kpilot.sources.saas.records import number

Row = dict[str, Any]
Auth = Callable[[str], tuple[dict[str, str], dict[str, str]]]  # token -> (headers, query parameters)


def parse_time(value: Any) -> datetime | None:
    """An API timestamp as naive UTC: ISO 8601 (`2024-01-17T19:55:04.281Z`), `YYYY-MM-DD HH:MM:SS`, or epoch ms."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC).replace(tzinfo=None)
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def convert(value: Any, duck: str) -> Any:
    """A JSON value as the Python value of the DuckDB type `duck` (None when it does not fit)."""
    if value is None or value == "":
        return None
    try:
        if duck == "TIMESTAMP":
            return parse_time(value)
        if duck == "DATE":
            return date.fromisoformat(str(value)[:10])
        if duck == "DOUBLE":
            return float(value)
        if duck == "BIGINT":
            return int(value)
        if duck == "BOOLEAN":
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, str) else str(value) if not isinstance(value, dict | list) else value


def table_info(name: str, fields: Mapping[str, str]) -> SourceTableInfo:
    return SourceTableInfo("", name, tuple(Column(f, t.lower(), t) for f, t in fields.items()))


def to_arrow(info: SourceTableInfo, rows: Iterable[Row]) -> pa.Table:
    return rows_to_arrow(info.columns, [[convert(r.get(c.name), c.type) for c in info.columns] for r in rows])


def ordered(info: SourceTableInfo, rows: list[Row], cursor: str | None, after: Any, inclusive: bool) -> list[Row]:
    """Rows past `after` on `cursor` (typed), in cursor order; all rows as they came without a cursor."""
    if cursor is None:
        return rows
    typ = next(c.type for c in info.columns if c.name == cursor)
    keyed = [(convert(r.get(cursor), typ), r) for r in rows]
    kept = [(k, r) for k, r in keyed if k is not None and (after is None or k > after or (inclusive and k == after))]
    kept.sort(key=lambda kr: kr[0])
    return [r for _, r in kept]


def batches(info: SourceTableInfo, rows: Iterable[Row], batch_size: int) -> Iterator[pa.Table]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch_size:
            yield to_arrow(info, chunk)
            chunk = []
    if chunk:
        yield to_arrow(info, chunk)


def extra_fields(source: Source, table: str) -> list[str]:
    """Fields beyond the documented ones that the workspace asks for: `options: {fields: {deals: [x]}}`."""
    wanted = (source.options.get("fields") or {}).get(table) or []
    if not isinstance(wanted, list) or not all(isinstance(f, str) for f in wanted):
        raise SyncError(msg("source '{source}': `options.fields.{table}` must be a list of field names, e.g. "
                            "`fields: {{{table}: [my_field]}}`.", source=source.key, table=table))
    return wanted


def client_for(source: Source, environ: Mapping[str, str] | None, secrets: Path | None, *, base_url: str,
               default_env: str, auth: Auth, fix: str) -> tuple[HttpClient, dict[str, str]]:
    """An HttpClient with the source's token; returns it and the query parameters every request carries."""
    token = source_token(source.key, source.options, environ, secrets, default_env=default_env)
    headers, params = auth(token)
    opts = source.options
    client = HttpClient(str(opts.get("base_url") or base_url), headers=headers,
                        timeout=number(source, "timeout", 30), max_retries=number(source, "max_retries", 5, int),
                        backoff=number(source, "backoff", 1.0), source=source.key, secrets=(token,),
                        fix_token=fix)
    return client, params


def page_size(source: Source, largest: int) -> int:
    """Objects asked per request: `options.page_size`, at most the API's largest page (the default)."""
    try:
        wanted = int(source.options.get("page_size") or largest)
    except (TypeError, ValueError):
        wanted = largest
    return max(1, min(wanted, largest))
