"""Pipedrive (API v1): deals, activities, persons.

Lists are read with `start`/`limit` paging until `additional_data.pagination.more_items_in_collection`
is false, sorted by `update_time` ascending (`sort=update_time ASC`). `update_time` is the cursor: the
v1 list endpoints have no "modified since" filter, so an incremental read pages through the list and
keeps the objects updated at or after the last cursor (client-side). Auth: the API token as the
`api_token` query parameter (masked in every message). A related object (`person_id: {value: 7, ...}`)
becomes its id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from kpilot.model.errors import msg
from kpilot.model.workspace import Source, SourceTable
from kpilot.sources.base import SourceTableInfo
from kpilot.sources.saas.http import HttpClient
from kpilot.sources.saas.objects import Row, batches, client_for, extra_fields, ordered, page_size, table_info

BASE_URL = "https://api.pipedrive.com"
PAGE = 500  # the v1 lists' largest page

OBJECTS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "deals": ({"status": "all_not_deleted"}, {
        "id": "BIGINT", "title": "VARCHAR", "value": "DOUBLE", "currency": "VARCHAR", "status": "VARCHAR",
        "pipeline_id": "BIGINT", "stage_id": "BIGINT", "person_id": "BIGINT", "org_id": "BIGINT",
        "user_id": "BIGINT", "add_time": "TIMESTAMP", "update_time": "TIMESTAMP", "won_time": "TIMESTAMP",
        "lost_time": "TIMESTAMP", "close_time": "TIMESTAMP", "expected_close_date": "DATE",
    }),
    "activities": ({"user_id": 0}, {
        "id": "BIGINT", "type": "VARCHAR", "subject": "VARCHAR", "done": "BOOLEAN", "due_date": "DATE",
        "deal_id": "BIGINT", "person_id": "BIGINT", "org_id": "BIGINT", "user_id": "BIGINT",
        "add_time": "TIMESTAMP", "update_time": "TIMESTAMP", "marked_as_done_time": "TIMESTAMP",
    }),
    "persons": ({}, {
        "id": "BIGINT", "name": "VARCHAR", "email": "VARCHAR", "org_id": "BIGINT", "owner_id": "BIGINT",
        "add_time": "TIMESTAMP", "update_time": "TIMESTAMP",
    }),
}
DEFAULT_TABLES = {name: SourceTable(table=name, cursor="update_time", primary_key="id") for name in OBJECTS}


class PipedriveConnector:
    """One Pipedrive company, read with a user's API token."""

    def __init__(self, source: Source, client: HttpClient, params: dict[str, str]):
        self.source = source
        self.client = client
        self.params = params

    def discover(self) -> list[SourceTableInfo]:
        return [table_info(name, {**fields, **dict.fromkeys(extra_fields(self.source, name), "VARCHAR")})
                for name, (_, fields) in OBJECTS.items()]

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        rows = ordered(table, list(self._list(table.name)), cursor, after, inclusive)
        yield from batches(table, rows, batch_size)

    def close(self) -> None:
        self.client.close()

    def _list(self, obj: str) -> Iterator[Row]:
        params: dict[str, Any] = {**self.params, **OBJECTS[obj][0], "limit": page_size(self.source, PAGE), "start": 0,
                                  "sort": "update_time ASC"}
        while True:
            page = self.client.get_json(f"/v1/{obj}", params)
            for item in page.get("data") or []:
                yield {k: _flat(v) for k, v in item.items()}
            pagination = (page.get("additional_data") or {}).get("pagination") or {}
            if not pagination.get("more_items_in_collection"):
                return
            params["start"] = pagination.get("next_start", params["start"] + len(page.get("data") or []))


def _flat(value: Any) -> Any:
    """A related object as its id (`{"value": 7, "name": ...}` -> 7); a list of e-mails as the primary one."""
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    if isinstance(value, list) and value and all(isinstance(v, dict) and "value" in v for v in value):
        primary = [v for v in value if v.get("primary")] or value
        return primary[0]["value"]
    return value


def connector_for(source: Source, base_dir: Path, environ: Mapping[str, str] | None = None,
                  secrets: Path | None = None) -> PipedriveConnector:
    client, params = client_for(source, environ, secrets, base_url=BASE_URL, default_env="PIPEDRIVE_TOKEN",
                                auth=lambda token: ({}, {"api_token": token}),
                                fix=msg("Fix: in Pipedrive, open Personal preferences > API, copy the API token "
                                        "(or generate a new one), and store it in the variable named by "
                                        "`options.token_env` (default PIPEDRIVE_TOKEN)."))
    return PipedriveConnector(source, client, params)
