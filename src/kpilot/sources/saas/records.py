"""What the GA4, Salesforce and Brevo connectors share: JSON records to typed batches, options and secrets.

An API object becomes a table whose columns have DuckDB types; a record's values are parsed by their column's
type (ISO date-times with `Z` or `+0000`, GA4's `YYYYMMDD` dates, numbers sent as text), then filtered on the
cursor and cut into batches in cursor order, as the Connector protocol asks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from kpilot.model.errors import msg
from kpilot.model.workspace import Source
from kpilot.sources.base import Column, SourceTableInfo, SyncError, rows_to_arrow
from kpilot.sources.saas.http import HttpClient
from kpilot.sources.secrets import Secret, missing, read_secrets


def snake(name: str) -> str:
    """An API's field name as a column name: `uniqueClicks` -> `unique_clicks`, `Region__c` -> `region__c`."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def parse(value: Any, duck_type: str) -> Any:
    """A JSON value as the Python value of its warehouse column (None when empty or unreadable as such)."""
    if value is None or value == "":
        return None
    try:
        if duck_type == "TIMESTAMPTZ":
            when = datetime.fromisoformat(str(value))
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
        if duck_type == "DATE":
            text = str(value)
            return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if text.isdigit() and len(text) == 8 \
                else date.fromisoformat(text[:10])
        if duck_type == "BIGINT":
            return int(float(value)) if not isinstance(value, bool) else int(value)
        if duck_type == "DOUBLE":
            return float(value)
        if duck_type == "BOOLEAN":
            return value if isinstance(value, bool) else str(value).lower() == "true"
    except (TypeError, ValueError):
        return str(value)  # kept as text: the warehouse then reports the value that does not fit
    return value


def cursor_filter(rows: Iterable[dict[str, Any]], cursor: str | None, after: Any, inclusive: bool
                  ) -> Iterator[dict[str, Any]]:
    """The rows past `after` on the cursor (all with a cursor when `after` is None; all without a cursor)."""
    for row in rows:
        if cursor is None:
            yield row
            continue
        value = row.get(cursor)
        if value is None:
            continue
        if after is None or value > after or (inclusive and value == after):
            yield row


def batches(info: SourceTableInfo, rows: Iterable[dict[str, Any]], batch_size: int) -> Iterator[pa.Table]:
    """Parsed rows (column name -> value) as pyarrow tables of at most `batch_size` rows."""
    names = [c.name for c in info.columns]
    chunk: list[list[Any]] = []
    for row in rows:
        chunk.append([row.get(n) for n in names])
        if len(chunk) >= batch_size:
            yield rows_to_arrow(info.columns, chunk)
            chunk = []
    if chunk:
        yield rows_to_arrow(info.columns, chunk)


def table(name: str, columns: Sequence[tuple[str, str, str]]) -> SourceTableInfo:
    """A table of an API: (column, the API's field, DuckDB type) in order; `source_type` keeps the field."""
    return SourceTableInfo("", name, tuple(Column(c, field, typ) for c, field, typ in columns))


def option(source: Source, name: str, default: Any = None, *, required: bool = False, example: str = "") -> Any:
    value = source.options.get(name, default)
    if required and (value is None or value == ""):
        raise SyncError(msg("source '{source}' needs the option `{option}`. Fix: add `options: {{{option}: "
                            "{example}}}` to the source.", source=source.key, option=name, example=example))
    return value


def number(source: Source, name: str, default: float, kind: type[int] | type[float] = float) -> Any:
    """A numeric option (`timeout: 30`), as `kind`; a SyncError naming the option when it is not a number."""
    value = source.options.get(name, default)
    try:
        if isinstance(value, bool):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        raise SyncError(msg("source '{source}': the option `{option}` must be a number, not '{value}'. Fix: write "
                            "e.g. `{option}: {example}`.", source=source.key, option=name, value=value,
                            example=kind(default))) from None


def secret(source: Source, var: str, what: str, environ: Mapping[str, str] | None, secrets: Path | None) -> Secret:
    """A credential named by an option: the variable `var` (environment, secrets file, application database)."""
    env = os.environ if environ is None else environ
    value = env.get(var) or (read_secrets(secrets).get(var) if secrets else None)
    if not value:
        raise missing(source.key, var, secrets, what)
    return Secret(value)


def client(source: Source, base_url: str, headers: Mapping[str, str], *, secrets: tuple[str, ...], fix: str,
           factory: Any = None) -> HttpClient:
    """The source's HTTP client: `base_url`, `timeout`, `retries` and `backoff` options over the defaults."""
    return (factory or HttpClient)(
        str(option(source, "base_url", base_url)), headers=headers, timeout=number(source, "timeout", 30),
        max_retries=number(source, "max_retries", 5, int), backoff=number(source, "backoff", 1.0),
        source=source.key, secrets=secrets, fix_token=fix)
