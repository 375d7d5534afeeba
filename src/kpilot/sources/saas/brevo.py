"""Brevo: the statistics of e-mail campaigns, from `GET /v3/emailCampaigns?statistics=globalStats`.

Authentication is the account's API key in the `api-key` header. Pages are read with `limit` (at most 100)
and `offset` until `count` campaigns are read. The table is copied in full at every sync: a campaign's
statistics keep growing after it is sent (opens, clicks, unsubscriptions) without its `modifiedAt`
moving, so no cursor would see them change. A statistic that Brevo adds to or removes from `globalStats`
adds or removes a column; the table is then copied afresh.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from kpilot.model.errors import msg
from kpilot.model.workspace import Source, SourceTable
from kpilot.sources.base import SourceTableInfo
from kpilot.sources.saas import records
from kpilot.sources.saas.http import HttpClient

BASE_URL = "https://api.brevo.com/v3"
PAGE = 100  # the largest `limit` /emailCampaigns accepts

DEFAULT_TABLES: dict[str, SourceTable] = {
    "brevo_campaigns": SourceTable(table="campaigns", primary_key="id"),
}

_CAMPAIGN = (
    ("id", "id", "BIGINT"), ("name", "name", "VARCHAR"), ("subject", "subject", "VARCHAR"),
    ("type", "type", "VARCHAR"), ("status", "status", "VARCHAR"), ("tag", "tag", "VARCHAR"),
    ("created_at", "createdAt", "TIMESTAMPTZ"), ("modified_at", "modifiedAt", "TIMESTAMPTZ"),
    ("scheduled_at", "scheduledAt", "TIMESTAMPTZ"), ("sent_date", "sentDate", "TIMESTAMPTZ"),
)
# globalStats as documented (GetCampaignStats); the rates are fractions, the rest counts.
_STATS = ("sent", "delivered", "uniqueViews", "viewed", "uniqueClicks", "clickers", "hardBounces", "softBounces",
          "unsubscriptions", "complaints", "deferred", "trackableViews", "estimatedViews", "returnBounce")
_FRACTIONS = ("trackableViewsRate",)


class BrevoConnector:
    """One Brevo account: a table `campaigns`, one row per e-mail campaign with its global statistics."""

    def __init__(self, source: Source, client: HttpClient):
        self.source = source
        self.client = client

    def _pages(self, limit: int = PAGE) -> Iterator[list[dict[str, Any]]]:
        offset = 0
        while True:
            data = self.client.get_json("emailCampaigns", {"statistics": "globalStats", "limit": limit,
                                                           "offset": offset, "sort": "asc"})
            data = data if isinstance(data, dict) else {}
            campaigns = data.get("campaigns") or []
            if campaigns:
                yield campaigns
            offset += len(campaigns)
            if not campaigns or offset >= int(data.get("count") or 0):
                return

    def discover(self) -> list[SourceTableInfo]:
        # The statistics a campaign carries today decide the columns (a new one is added, a dropped one goes).
        first = next(self._pages(limit=1), [])
        found = _stats(first[0]) if first else {}
        names = [s for s in (*_STATS, *_FRACTIONS) if s in found or not found]
        names += sorted(s for s in found if s not in names and isinstance(found[s], int | float))
        stats = [(records.snake(s), f"statistics.globalStats.{s}", "DOUBLE" if s in _FRACTIONS or isinstance(
            found.get(s), float) else "BIGINT") for s in names]
        return [records.table("campaigns", [*_CAMPAIGN, *stats])]

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        def rows() -> Iterator[dict[str, Any]]:
            for page in self._pages():
                for c in page:
                    stats = _stats(c)
                    yield {col.name: records.parse(
                        stats.get(col.source_type.rsplit(".", 1)[1]) if col.source_type.startswith("statistics.")
                        else c.get(col.source_type), col.type) for col in table.columns}

        ordered = sorted(records.cursor_filter(rows(), cursor, after, inclusive),
                         key=lambda r: r[cursor]) if cursor else rows()
        yield from records.batches(table, ordered, batch_size)

    def close(self) -> None:
        self.client.close()


def _stats(campaign: dict[str, Any]) -> dict[str, Any]:
    stats = (campaign.get("statistics") or {}).get("globalStats") or {}
    return stats if isinstance(stats, dict) else {}


def connector_for(source: Source, base_dir: Path, environ: Mapping[str, str] | None = None,
                  secrets: Path | None = None) -> BrevoConnector:
    var = records.option(source, "api_key_env", "BREVO_API_KEY")
    key = records.secret(source, var, msg("the account's API key (Brevo: SMTP & API > API keys)"), environ,
                          secrets)
    client = records.client(
        source, BASE_URL, {"api-key": key.reveal(), "accept": "application/json"}, secrets=(key.reveal(),),
        fix=msg("Fix: create an API key in Brevo (SMTP & API > API keys) and store it in {var}.", var=var),
        factory=HttpClient)
    return BrevoConnector(source, client)
