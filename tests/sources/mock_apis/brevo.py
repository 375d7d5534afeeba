"""Brevo API v3, as documented: GET /v3/emailCampaigns with `statistics=globalStats`, limit/offset paging.

- GET /v3/emailCampaigns?statistics=globalStats&limit&offset&sort -> {"count": N, "campaigns": [{"id", "name",
  "subject", "type", "status", "tag", "createdAt", "modifiedAt", "scheduledAt", "sentDate", "statistics":
  {"globalStats": {"sent", "delivered", "uniqueViews", "uniqueClicks", "unsubscriptions", ...},
  "campaignStats": [...]}}]}; `limit` at most 100; `sort` (asc|desc) on creation.
- The key goes in the `api-key` header; a refused key: 401 {"code": "unauthorized", "message": "Key not found"}.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.sources.mock_apis import Answer, MockApi, Request

T0 = datetime(2026, 3, 2, 8, 30)
STATS = ("uniqueClicks", "clickers", "complaints", "delivered", "sent", "softBounces", "hardBounces",
         "uniqueViews", "trackableViews", "unsubscriptions", "viewed")


def stamp(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z") if t else None


def sample(n: int = 23) -> list[dict[str, Any]]:
    out = []
    for i in range(1, n + 1):
        created = T0 + timedelta(days=3 * i, hours=i % 5)
        sent = created + timedelta(days=1) if i % 4 else None
        stats = {s: (k + 1) * (37 * i % 101) if sent else 0 for k, s in enumerate(STATS)}
        out.append({"id": i, "name": f"Newsletter {i}", "subject": f"News #{i}", "type": "classic",
                    "status": "sent" if sent else "draft", "tag": "newsletter" if i % 2 else None,
                    "testSent": False, "header": "[DEFAULT_HEADER]", "footer": "[DEFAULT_FOOTER]",
                    "sender": {"email": "news@example.com", "name": "News", "id": 1},
                    "createdAt": stamp(created), "modifiedAt": stamp(created + timedelta(hours=2)),
                    "scheduledAt": stamp(sent), "sentDate": stamp(sent),
                    "recipients": {"lists": [5], "exclusionLists": []},
                    "statistics": {"globalStats": stats, "campaignStats": [{"listId": 5, **stats}],
                                   "mirrorClick": 0, "remaining": 0, "linksStats": {}, "statsByDomain": {}}})
    return out


class BrevoApi(MockApi):
    token = "xkeysib-good-key"

    def __init__(self, campaigns: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.campaigns = campaigns if campaigns is not None else sample()
        self.removed: set[str] = set()  # statistics no longer sent (a schema change)
        self.added: dict[str, Any] = {}  # statistics newly sent

    @property
    def base_url(self) -> str:
        return f"{self.url}/v3"

    def authorized(self, req: Request) -> bool:
        return req.headers.get("api-key") == self.token

    def unauthorized(self) -> Answer:
        return Answer(401, {"code": "unauthorized", "message": "Key not found"})

    def handle(self, req: Request) -> Answer:
        if req.method != "GET" or req.path != "/v3/emailCampaigns":
            return Answer(404, {"code": "not_found", "message": "Not found"})
        limit, offset = int(req.query.get("limit", 50)), int(req.query.get("offset", 0))
        if not 0 <= limit <= 100:
            return Answer(400, {"code": "out_of_range", "message": "limit should be between 0 and 100"})
        items = sorted(self.campaigns, key=lambda c: c["createdAt"], reverse=req.query.get("sort") != "asc")
        page = []
        for c in items[offset:offset + limit]:
            stats = {k: v for k, v in c["statistics"]["globalStats"].items() if k not in self.removed}
            page.append({**c, "statistics": {**c["statistics"], "globalStats": {**stats, **self.added}}})
        return Answer(200, {"count": len(items), "campaigns": page})
