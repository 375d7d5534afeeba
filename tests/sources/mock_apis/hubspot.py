"""HubSpot CRM v3, as documented: objects list with `after` paging, search, deal pipelines, error bodies.

- GET /crm/v3/objects/{object}?limit&after&properties -> {"results": [{"id", "properties": {...},
  "createdAt", "updatedAt", "archived"}], "paging": {"next": {"after", "link"}}} (properties as strings).
- POST /crm/v3/objects/{object}/search {filterGroups: [{filters: [{propertyName, operator, value}]}],
  sorts: [{propertyName, direction}], properties, limit, after} -> {"total", "results", "paging"};
  paging past `search_limit` results (10,000 in HubSpot) answers 400.
- GET /crm/v3/pipelines/deals -> {"results": [{"id", "label", "stages": [{"id", "label",
  "metadata": {"isClosed": "true", "probability": "1.0"}}]}]}.
- A refused token: 401 {"status": "error", "message": ..., "category": "EXPIRED_AUTHENTICATION"}.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.sources.mock_apis import Answer, MockApi, Request

STAGES = [  # (pipeline id, pipeline label, stage id, stage label, isClosed, probability)
    ("default", "Sales Pipeline", "appointmentscheduled", "Appointment Scheduled", "false", "0.2"),
    ("default", "Sales Pipeline", "contractsent", "Contract Sent", "false", "0.9"),
    ("default", "Sales Pipeline", "closedwon", "Closed Won", "true", "1.0"),
    ("default", "Sales Pipeline", "closedlost", "Closed Lost", "true", "0.0"),
]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def sample(n_deals: int = 30, n_meetings: int = 12, n_contacts: int = 8) -> dict[str, list[dict[str, Any]]]:
    """Deterministic objects: deals created over weeks, closed won or lost, some still open."""
    stages = ["closedwon", "closedlost", "contractsent", "closedwon", "appointmentscheduled", "closedlost"]
    deals = []
    for i in range(1, n_deals + 1):
        created = T0 + timedelta(days=2 * i, hours=i % 5)
        stage = stages[i % len(stages)]
        deals.append({"id": str(1000 + i), "properties": {
            "dealname": f"Deal {i}", "amount": f"{500 + 137 * i}.50", "dealstage": stage, "pipeline": "default",
            "createdate": iso(created), "closedate": iso(created + timedelta(days=9)) if stage.startswith("closed")
            else None, "hs_lastmodifieddate": iso(created + timedelta(days=10)), "hs_object_id": str(1000 + i)}})
    meetings = [{"id": str(5000 + i), "properties": {
        "hs_meeting_title": f"Demo {i}", "hs_activity_type": "Demo" if i % 3 else "Discovery",
        "hs_meeting_outcome": "COMPLETED", "hs_meeting_start_time": iso(T0 + timedelta(days=3 * i, hours=2)),
        "hs_timestamp": iso(T0 + timedelta(days=3 * i, hours=2)), "hs_createdate": iso(T0 + timedelta(days=3 * i)),
        "hs_lastmodifieddate": iso(T0 + timedelta(days=3 * i, hours=3))}} for i in range(1, n_meetings + 1)]
    contacts = [{"id": str(9000 + i), "properties": {
        "email": f"c{i}@example.com", "firstname": f"C{i}", "lastname": "Doe", "lifecyclestage": "lead",
        "createdate": iso(T0 + timedelta(days=i)), "lastmodifieddate": iso(T0 + timedelta(days=i, hours=1))}}
        for i in range(1, n_contacts + 1)]
    return {"deals": deals, "meetings": meetings, "contacts": contacts}


def _ms(value: str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


class HubSpotApi(MockApi):
    def __init__(self, objects: dict[str, list[dict[str, Any]]] | None = None, search_limit: int = 10_000) -> None:
        super().__init__()
        self.objects = objects if objects is not None else sample()
        self.search_limit = search_limit
        self.removed: set[str] = set()  # properties the API no longer sends (a schema change)
        self.added: dict[str, str] = {}  # properties it sends on top of those asked

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Answer:
        return Answer(401, {"status": "error", "message": "The OAuth token used to make this call expired 2 hours "
                            "ago.", "correlationId": "b8b47b8b", "category": "EXPIRED_AUTHENTICATION"})

    def modify(self, obj: str, object_id: str, when: datetime, **props: str) -> None:
        for o in self.objects[obj]:
            if o["id"] == object_id:
                o["properties"].update(props)
                o["properties"]["hs_lastmodifieddate" if obj != "contacts" else "lastmodifieddate"] = iso(when)

    def _out(self, o: dict[str, Any], props: list[str]) -> dict[str, Any]:
        shown = {p: o["properties"].get(p) for p in props if p not in self.removed}
        shown.update(self.added)
        return {"id": o["id"], "properties": shown, "createdAt": o["properties"].get("createdate"),
                "updatedAt": o["properties"].get("hs_lastmodifieddate"), "archived": False}

    def handle(self, req: Request) -> Answer:
        parts = req.path.strip("/").split("/")
        if parts[:3] == ["crm", "v3", "pipelines"]:
            pipelines: dict[str, dict[str, Any]] = {}
            for pid, plabel, sid, slabel, closed, prob in STAGES:
                p = pipelines.setdefault(pid, {"id": pid, "label": plabel, "displayOrder": 0, "stages": []})
                p["stages"].append({"id": sid, "label": slabel, "displayOrder": len(p["stages"]),
                                    "metadata": {"isClosed": closed, "probability": prob}, "archived": False})
            return Answer(200, {"results": list(pipelines.values())})
        if parts[:3] != ["crm", "v3", "objects"] or len(parts) < 4 or parts[3] not in self.objects:
            return Answer(404, {"status": "error", "message": f"Unknown path {req.path}", "category": "NOT_FOUND"})
        objects = sorted(self.objects[parts[3]], key=lambda o: int(o["id"]))
        if req.method == "GET":
            limit, start = int(req.query.get("limit", 10)), int(req.query.get("after", 0))
            props = (req.query.get("properties") or "").split(",")
            page = objects[start:start + limit]
            out: dict[str, Any] = {"results": [self._out(o, props) for o in page]}
            if start + limit < len(objects):
                out["paging"] = {"next": {"after": str(start + limit), "link": "..."}}
            return Answer(200, out)
        body = req.body or {}
        f = body["filterGroups"][0]["filters"][0]
        bound = _ms(f["value"])
        prop = f["propertyName"]
        keep = [o for o in objects if (t := _parse(o["properties"].get(prop))) is not None
                and (t >= bound if f["operator"] == "GTE" else t > bound)]
        keep.sort(key=lambda o: _parse(o["properties"][prop]) or T0)
        start, limit = int(body.get("after") or 0), int(body.get("limit", 10))
        if start >= self.search_limit:
            return Answer(400, {"status": "error", "message": "There was a problem with the request.",
                                "category": "VALIDATION_ERROR"})
        page = keep[start:start + limit]
        out = {"total": len(keep), "results": [self._out(o, body.get("properties") or []) for o in page]}
        if start + limit < len(keep):
            out["paging"] = {"next": {"after": str(start + limit)}}
        return Answer(200, out)
