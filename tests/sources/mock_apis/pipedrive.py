"""Pipedrive API v1, as documented: /v1/deals, /v1/activities, /v1/persons with start/limit paging.

- GET /v1/{object}?api_token&start&limit&sort -> {"success": true, "data": [...], "additional_data":
  {"pagination": {"start", "limit", "more_items_in_collection", "next_start"}}}.
- Related objects come nested (`person_id: {"name": ..., "value": 7}`), e-mails as a list of
  `{"label", "value", "primary"}`; times as `YYYY-MM-DD HH:MM:SS` (UTC).
- A refused token: 401 {"success": false, "error": "unauthorized access", "errorCode": 401}.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.sources.mock_apis import Answer, MockApi, Request

T0 = datetime(2026, 1, 5, 9, 0)


def stamp(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else None


def sample(n_deals: int = 25, n_activities: int = 14, n_persons: int = 6) -> dict[str, list[dict[str, Any]]]:
    statuses = ["won", "lost", "open", "won", "lost"]
    deals = []
    for i in range(1, n_deals + 1):
        add = T0 + timedelta(days=2 * i, hours=i % 7)
        status = statuses[i % len(statuses)]
        closed = add + timedelta(days=8) if status != "open" else None
        deals.append({"id": i, "title": f"Deal {i}", "value": 400 + 91 * i, "currency": "EUR", "status": status,
                      "pipeline_id": 1, "stage_id": 1 + i % 4, "person_id": {"name": f"P{i}", "value": 100 + i % 6},
                      "org_id": None, "user_id": {"id": 9, "name": "Ann", "value": 9},
                      "add_time": stamp(add), "update_time": stamp(add + timedelta(days=9)),
                      "won_time": stamp(closed) if status == "won" else None,
                      "lost_time": stamp(closed) if status == "lost" else None, "close_time": stamp(closed),
                      "expected_close_date": (add + timedelta(days=30)).date().isoformat()})
    activities = [{"id": i, "type": "demo" if i % 3 else "call", "subject": f"Activity {i}", "done": i % 2 == 0,
                   "due_date": (T0 + timedelta(days=3 * i)).date().isoformat(), "deal_id": i, "person_id": 100 + i % 6,
                   "org_id": None, "user_id": 9, "add_time": stamp(T0 + timedelta(days=3 * i - 1)),
                   "update_time": stamp(T0 + timedelta(days=3 * i, hours=1)), "marked_as_done_time": None}
                  for i in range(1, n_activities + 1)]
    persons = [{"id": 100 + i, "name": f"Person {i}", "email": [{"label": "work", "value": f"p{i}@example.com",
                                                               "primary": True}],
                "org_id": None, "owner_id": {"id": 9, "value": 9}, "add_time": stamp(T0 + timedelta(days=i)),
                "update_time": stamp(T0 + timedelta(days=i, hours=2))} for i in range(n_persons)]
    return {"deals": deals, "activities": activities, "persons": persons}


class PipedriveApi(MockApi):
    def __init__(self, objects: dict[str, list[dict[str, Any]]] | None = None) -> None:
        super().__init__()
        self.objects = objects if objects is not None else sample()
        self.removed: set[str] = set()
        self.added: dict[str, Any] = {}

    def authorized(self, req: Request) -> bool:
        return req.query.get("api_token") == self.token

    def unauthorized(self) -> Answer:
        return Answer(401, {"success": False, "error": "unauthorized access", "errorCode": 401,
                            "error_info": "Please check developers.pipedrive.com for more information about "
                                          "Pipedrive API."})

    def modify(self, obj: str, object_id: int, when: datetime, **fields: Any) -> None:
        for o in self.objects[obj]:
            if o["id"] == object_id:
                o.update(fields, update_time=stamp(when))

    def handle(self, req: Request) -> Answer:
        parts = req.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "v1" or parts[1] not in self.objects:
            return Answer(404, {"success": False, "error": "Unknown method .", "errorCode": 404})
        items = list(self.objects[parts[1]])
        if req.query.get("sort", "").startswith("update_time"):
            items.sort(key=lambda o: (o["update_time"], o["id"]))
        start, limit = int(req.query.get("start", 0)), int(req.query.get("limit", 100))
        page = [{**{k: v for k, v in o.items() if k not in self.removed}, **self.added}
                for o in items[start:start + limit]]
        more = start + limit < len(items)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return Answer(200, {"success": True, "data": page or None, "additional_data": {"pagination": pagination}})
