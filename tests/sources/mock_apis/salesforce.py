"""Salesforce REST API, as documented: describe, and SOQL through the query resource with nextRecordsUrl.

- GET /services/data/vXX.X/sobjects/{object}/describe -> {"name", "fields": [{"name", "type", "custom"}]}.
- GET /services/data/vXX.X/query?q=SOQL -> {"totalSize", "done", "nextRecordsUrl"?, "records": [{"attributes":
  {"type", "url"}, field: value...}]}; then GET nextRecordsUrl (/services/data/vXX.X/query/01g...-2000).
  The SOQL understood: SELECT fields FROM object [WHERE field >= literal | WHERE field != null]
  [ORDER BY field ASC[, Id ASC]]. Date-times look like 2026-01-05T09:00:00.000+0000.
- `Authorization: Bearer token`; a refused or expired one: 401 [{"message": "Session expired or invalid",
  "errorCode": "INVALID_SESSION_ID"}]; an unknown field: 400 [{"message", "errorCode": "INVALID_FIELD"}].
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.sources.mock_apis import Answer, MockApi, Request

VERSION = "v62.0"
T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
TYPES: dict[str, dict[str, str]] = {
    "Opportunity": {"Id": "id", "Name": "string", "AccountId": "reference", "OwnerId": "reference",
                    "StageName": "picklist", "Amount": "currency", "Probability": "percent", "Type": "picklist",
                    "LeadSource": "picklist", "IsClosed": "boolean", "IsWon": "boolean", "CloseDate": "date",
                    "CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime",
                    "BillingAddress": "address"},
    "Lead": {"Id": "id", "Status": "picklist", "LeadSource": "picklist", "Company": "string",
             "IsConverted": "boolean", "ConvertedDate": "date", "ConvertedOpportunityId": "reference",
             "CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime"},
    "Event": {"Id": "id", "Subject": "string", "Type": "picklist", "ActivityDate": "date",
              "StartDateTime": "datetime", "EndDateTime": "datetime", "DurationInMinutes": "int",
              "WhoId": "reference", "WhatId": "reference", "CreatedDate": "datetime",
              "LastModifiedDate": "datetime", "SystemModstamp": "datetime"},
}


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def sample(n_opps: int = 31, n_leads: int = 17, n_events: int = 12) -> dict[str, list[dict[str, Any]]]:
    stages = ["Prospecting", "Closed Won", "Closed Lost", "Negotiation/Review", "Closed Won"]
    opps = []
    for i in range(1, n_opps + 1):
        created = T0 + timedelta(days=i, hours=i % 6)
        stage = stages[i % len(stages)]
        closed = stage.startswith("Closed")
        opps.append({"Id": f"006{i:012d}", "Name": f"Opp {i}", "AccountId": f"001{i % 5:012d}",
                     "OwnerId": "005000000000001", "StageName": stage, "Amount": 1000.0 + 250.5 * i,
                     "Probability": 100.0 if stage == "Closed Won" else 20.0, "Type": "New Business",
                     "LeadSource": "Web" if i % 2 else None, "IsClosed": closed, "IsWon": stage == "Closed Won",
                     "CloseDate": (created + timedelta(days=20)).date().isoformat(), "CreatedDate": stamp(created),
                     "LastModifiedDate": stamp(created + timedelta(days=2)),
                     # a few share one SystemModstamp, as bulk updates do
                     "SystemModstamp": stamp(created + timedelta(days=2) if i % 7 else T0 + timedelta(days=40)),
                     "BillingAddress": None})
    leads = [{"Id": f"00Q{i:012d}", "Status": "Converted" if i % 3 == 0 else "Open", "LeadSource": "Web",
              "Company": f"Co {i}", "IsConverted": i % 3 == 0,
              "ConvertedDate": (T0 + timedelta(days=i + 5)).date().isoformat() if i % 3 == 0 else None,
              "ConvertedOpportunityId": f"006{i:012d}" if i % 3 == 0 else None,
              "CreatedDate": stamp(T0 + timedelta(days=i)), "LastModifiedDate": stamp(T0 + timedelta(days=i + 5)),
              "SystemModstamp": stamp(T0 + timedelta(days=i + 5))} for i in range(1, n_leads + 1)]
    events = [{"Id": f"00U{i:012d}", "Subject": "Demo" if i % 2 else "Call", "Type": "Meeting",
               "ActivityDate": (T0 + timedelta(days=2 * i)).date().isoformat(),
               "StartDateTime": stamp(T0 + timedelta(days=2 * i, hours=5)),
               "EndDateTime": stamp(T0 + timedelta(days=2 * i, hours=6)), "DurationInMinutes": 60,
               "WhoId": f"00Q{i:012d}", "WhatId": None, "CreatedDate": stamp(T0 + timedelta(days=i)),
               "LastModifiedDate": stamp(T0 + timedelta(days=i, minutes=3)),
               "SystemModstamp": stamp(T0 + timedelta(days=i, minutes=3))} for i in range(1, n_events + 1)]
    return {"Opportunity": opps, "Lead": leads, "Event": events}


_SOQL = re.compile(r"^SELECT (?P<fields>.+?) FROM (?P<obj>\w+)(?: WHERE (?P<field>\w+) (?P<op>>=|!=) (?P<value>\S+))?"
                   r"(?: ORDER BY (?P<order>\w+) ASC(?:, Id ASC)?)?$")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


class SalesforceApi(MockApi):
    token = "00Dgood!session"

    def __init__(self, objects: dict[str, list[dict[str, Any]]] | None = None, page: int = 2000) -> None:
        super().__init__()
        self.objects = objects if objects is not None else sample()
        self.types = {k: dict(v) for k, v in TYPES.items()}
        self.page = page
        self.cursors: dict[str, list[dict[str, Any]]] = {}
        self.ids = itertools.count(1)

    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Answer:
        return Answer(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])

    def add_field(self, obj: str, name: str, typ: str, values: dict[str, Any]) -> None:
        """A custom field created in the org (values by record Id)."""
        self.types[obj][name] = typ
        for r in self.objects[obj]:
            r[name] = values.get(r["Id"])

    def remove_field(self, obj: str, name: str) -> None:
        del self.types[obj][name]
        for r in self.objects[obj]:
            r.pop(name, None)

    def modify(self, obj: str, record_id: str, when: datetime, **fields: Any) -> None:
        for r in self.objects[obj]:
            if r["Id"] == record_id:
                r.update(fields, LastModifiedDate=stamp(when), SystemModstamp=stamp(when))

    def handle(self, req: Request) -> Answer:
        base = f"/services/data/{VERSION}/"
        if not req.path.startswith(base):
            return Answer(404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
        rest = req.path[len(base):].split("/")
        if len(rest) == 3 and rest[0] == "sobjects" and rest[2] == "describe" and rest[1] in self.types:
            return Answer(200, {"name": rest[1], "fields": [
                {"name": n, "type": t, "custom": n.endswith("__c")} for n, t in self.types[rest[1]].items()]})
        if rest == ["query"]:
            return self.query(req.query.get("q", ""))
        if len(rest) == 2 and rest[0] == "query" and rest[1] in self.cursors:
            return self.batch(rest[1], self.cursors.pop(rest[1]), total=None)
        return Answer(404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])

    def query(self, soql: str) -> Answer:
        m = _SOQL.match(soql.strip())
        if not m or m["obj"] not in self.objects:
            return Answer(400, [{"message": f"unexpected token: {soql[:40]}", "errorCode": "MALFORMED_QUERY"}])
        obj, fields = m["obj"], [f.strip() for f in m["fields"].split(",")]
        for f in fields + [x for x in (m["field"], m["order"]) if x]:
            if f not in self.types[obj]:
                return Answer(400, [{"message": f"No such column '{f}' on entity '{obj}'.",
                                     "errorCode": "INVALID_FIELD"}])
        records = list(self.objects[obj])
        if m["field"]:
            if m["op"] == "!=":
                records = [r for r in records if r.get(m["field"]) is not None]
            else:
                value = _when(m["value"])
                records = [r for r in records if r.get(m["field"]) and _when(r[m["field"]]) >= value]
        if m["order"]:
            records.sort(key=lambda r: (_when(r[m["order"]]), r["Id"]))
        out = [{"attributes": {"type": obj, "url": f"/services/data/{VERSION}/sobjects/{obj}/{r['Id']}"},
                **{f: r.get(f) for f in fields}} for r in records]
        return self.batch(f"01g{next(self.ids):015d}", out, total=len(out))

    def batch(self, locator: str, records: list[dict[str, Any]], total: int | None) -> Answer:
        body: dict[str, Any] = {"totalSize": total if total is not None else len(records), "done": True,
                                "records": records[:self.page]}
        if len(records) > self.page:
            nxt = f"{locator.split('-')[0]}-{next(self.ids)}"
            self.cursors[nxt] = records[self.page:]
            body.update(done=False, nextRecordsUrl=f"/services/data/{VERSION}/query/{nxt}")
        return Answer(200, body)
