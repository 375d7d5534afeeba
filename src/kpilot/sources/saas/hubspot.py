"""HubSpot CRM (API v3): deals (with their pipeline and stage labels, and whether won or lost), contacts, meetings.

Full reads list `/crm/v3/objects/{object}` page by page (`after`); incremental reads POST
`/crm/v3/objects/{object}/search` with `{last-modified} GTE <cursor>`, sorted ascending. The search API
returns at most 10,000 results for one query: past that, the query starts again from the last
modified time it reached (ids already read at that time are skipped). Auth: a private-app token, sent
as `Authorization: Bearer`. Stage ids are mapped to labels and won/lost from `/crm/v3/pipelines/deals`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from kpilot.model.errors import msg
from kpilot.model.workspace import Source, SourceTable
from kpilot.sources.base import SourceTableInfo, SyncError
from kpilot.sources.saas.http import HttpClient
from kpilot.sources.saas.objects import Row, batches, client_for, convert, extra_fields, ordered, page_size, table_info

BASE_URL = "https://api.hubapi.com"
PAGE = 100  # the objects API's and the search API's largest page
SEARCH_LIMIT = 10_000  # results one search query can page through

# object -> (its last-modified property, its documented properties and their warehouse types)
OBJECTS: dict[str, tuple[str, dict[str, str]]] = {
    "deals": ("hs_lastmodifieddate", {
        "dealname": "VARCHAR", "amount": "DOUBLE", "dealstage": "VARCHAR", "pipeline": "VARCHAR",
        "createdate": "TIMESTAMP", "closedate": "TIMESTAMP", "hs_lastmodifieddate": "TIMESTAMP",
    }),
    "contacts": ("lastmodifieddate", {
        "email": "VARCHAR", "firstname": "VARCHAR", "lastname": "VARCHAR", "lifecyclestage": "VARCHAR",
        "createdate": "TIMESTAMP", "lastmodifieddate": "TIMESTAMP",
    }),
    "meetings": ("hs_lastmodifieddate", {
        "hs_meeting_title": "VARCHAR", "hs_activity_type": "VARCHAR", "hs_meeting_outcome": "VARCHAR",
        "hs_meeting_start_time": "TIMESTAMP", "hs_timestamp": "TIMESTAMP", "hs_createdate": "TIMESTAMP",
        "hs_lastmodifieddate": "TIMESTAMP",
    }),
}
# Columns kpilot derives for deals from the deal pipelines.
STAGE_COLUMNS = {"pipeline_label": "VARCHAR", "stage_label": "VARCHAR", "stage": "VARCHAR"}

DEFAULT_TABLES = {name: SourceTable(table=name, cursor=cursor, primary_key="id")
                  for name, (cursor, _) in OBJECTS.items()}


class HubSpotConnector:
    """One HubSpot account, read with a private-app token."""

    def __init__(self, source: Source, client: HttpClient):
        self.source = source
        self.client = client
        self._stages: dict[str, tuple[str, str, str]] | None = None
        self.page = page_size(source, PAGE)

    def discover(self) -> list[SourceTableInfo]:
        out = []
        for name, (_, props) in OBJECTS.items():
            fields = {"id": "VARCHAR", **props, **dict.fromkeys(extra_fields(self.source, name), "VARCHAR")}
            if name == "deals":
                fields |= STAGE_COLUMNS
            out.append(table_info(name, fields))
        return out

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        props = [c.name for c in table.columns if c.name != "id" and c.name not in STAGE_COLUMNS]
        if cursor is not None and after is not None:
            rows: Iterator[Row] = self._search(table.name, props, cursor, after, inclusive)
        else:
            rows = iter(ordered(table, list(self._list(table.name, props)), cursor, after, inclusive))
        if table.name == "deals":
            rows = (self._with_stage(r) for r in rows)
        yield from batches(table, rows, batch_size)

    def close(self) -> None:
        self.client.close()

    # --- reading ---------------------------------------------------------------------------------

    def _list(self, obj: str, props: list[str]) -> Iterator[Row]:
        params: dict[str, Any] = {"limit": self.page, "properties": ",".join(props), "archived": "false"}
        while True:
            page = self.client.get_json(f"/crm/v3/objects/{obj}", params)
            for result in page.get("results") or []:
                yield _row(result)
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            params["after"] = after

    def _search(self, obj: str, props: list[str], cursor: str, after: Any, inclusive: bool) -> Iterator[Row]:
        """Objects modified at or after `after`, in last-modified order, across the 10,000-result limit."""
        bound, operator = after, "GTE" if inclusive else "GT"
        seen_at_bound: set[str] = set()
        while True:
            body: dict[str, Any] = {
                "filterGroups": [{"filters": [{"propertyName": cursor, "operator": operator,
                                               "value": str(_epoch_ms(bound))}]}],
                "sorts": [{"propertyName": cursor, "direction": "ASCENDING"}],
                "properties": props, "limit": self.page,
            }
            read, new, last = 0, 0, bound
            seen_now: set[str] = set()
            while True:
                page = self.client.post_json(f"/crm/v3/objects/{obj}/search", body)
                for result in page.get("results") or []:
                    row = _row(result)
                    read += 1
                    stamp = convert(row.get(cursor), "TIMESTAMP")
                    if stamp == bound and row["id"] in seen_at_bound:
                        continue
                    new += 1
                    if stamp != last:
                        last, seen_now = stamp, set()
                    seen_now.add(row["id"])
                    yield row
                nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not nxt:
                    return
                if int(nxt) >= SEARCH_LIMIT:
                    break  # the search API refuses to page past its limit: start again from `last`
                body["after"] = nxt
            if new == 0 or last is None:
                raise SyncError(msg("source '{source}': more than {n} {object} share one last-modified time; "
                                    "the HubSpot search API cannot page past them. Fix: run `kpilot sync --full "
                                    "{source}` (a full read lists every object).", source=self.source.key,
                                    n=SEARCH_LIMIT, object=obj))
            seen_at_bound = seen_now | (seen_at_bound if last == bound else set())
            bound, operator = last, "GTE"

    def _with_stage(self, row: Row) -> Row:
        if self._stages is None:
            self._stages = self._load_stages()
        pipeline_label, stage_label, stage = self._stages.get(str(row.get("dealstage")), (None, None, None))
        return {**row, "pipeline_label": pipeline_label, "stage_label": stage_label, "stage": stage}

    def _load_stages(self) -> dict[str, tuple[str, str, str]]:
        """stage id -> (pipeline label, stage label, 'won' | 'lost' | 'open')."""
        out = {}
        for pipeline in self.client.get_json("/crm/v3/pipelines/deals").get("results") or []:
            for st in pipeline.get("stages") or []:
                meta = st.get("metadata") or {}
                closed = str(meta.get("isClosed", "false")).lower() == "true"
                try:
                    won = float(meta.get("probability", 0)) >= 1.0
                except (TypeError, ValueError):
                    won = False
                out[str(st.get("id"))] = (pipeline.get("label"), st.get("label"),
                                          "won" if closed and won else "lost" if closed else "open")
        return out


def _row(result: Mapping[str, Any]) -> Row:
    return {**(result.get("properties") or {}), "id": str(result.get("id"))}


def _epoch_ms(value: Any) -> int:
    """A cursor value (a naive UTC datetime) as HubSpot's filter value: milliseconds since the epoch."""
    from datetime import UTC

    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def connector_for(source: Source, base_dir: Path, environ: Mapping[str, str] | None = None,
                  secrets: Path | None = None) -> HubSpotConnector:
    client, _ = client_for(source, environ, secrets, base_url=BASE_URL, default_env="HUBSPOT_TOKEN",
                           auth=lambda token: ({"Authorization": f"Bearer {token}"}, {}),
                           fix=msg("Fix: in HubSpot, open Settings > Integrations > Private apps, copy the app's "
                                   "access token (or rotate it), and store it in the variable named by "
                                   "`options.token_env` (default HUBSPOT_TOKEN)."))
    return HubSpotConnector(source, client)
