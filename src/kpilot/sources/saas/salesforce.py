"""Salesforce: Opportunity, Lead and Event records through the REST API's SOQL query resource.

`GET /services/data/vXX.X/sobjects/{object}/describe` says which fields the org has (and their types);
`GET /services/data/vXX.X/query?q=SELECT ...` reads them, following `nextRecordsUrl` until `done`. An
incremental read asks `WHERE SystemModstamp >= <the last committed time> ORDER BY SystemModstamp`. The
OAuth access token goes in `Authorization: Bearer`. Columns are the API's field names in snake_case
(`StageName` -> `stage_name`, `Region__c` -> `region__c`); custom fields are copied too, so a field added
or removed in the org adds or removes a column, and the table is then copied afresh.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from kpilot.model.errors import msg
from kpilot.model.workspace import Source, SourceTable
from kpilot.sources.base import SourceTableInfo, SyncError
from kpilot.sources.saas import records
from kpilot.sources.saas.http import HttpClient

API_VERSION = "v62.0"

# The standard fields copied from each object (those the org has); custom fields (`...__c`) follow them.
OBJECTS: dict[str, tuple[str, ...]] = {
    "Opportunity": ("Id", "Name", "AccountId", "OwnerId", "StageName", "Amount", "Probability", "Type", "LeadSource",
                    "ForecastCategoryName", "IsClosed", "IsWon", "CloseDate", "CreatedDate", "LastModifiedDate",
                    "SystemModstamp"),
    "Lead": ("Id", "Status", "LeadSource", "Company", "Industry", "Country", "OwnerId", "IsConverted",
             "ConvertedDate", "ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId", "CreatedDate",
             "LastModifiedDate", "SystemModstamp"),
    "Event": ("Id", "Subject", "Type", "ActivityDate", "ActivityDateTime", "StartDateTime", "EndDateTime",
              "DurationInMinutes", "WhoId", "WhatId", "OwnerId", "CreatedDate", "LastModifiedDate", "SystemModstamp"),
}

DEFAULT_TABLES: dict[str, SourceTable] = {
    "salesforce_opportunities": SourceTable(table="Opportunity", cursor="system_modstamp", primary_key="id"),
    "salesforce_leads": SourceTable(table="Lead", cursor="system_modstamp", primary_key="id"),
    "salesforce_events": SourceTable(table="Event", cursor="system_modstamp", primary_key="id"),
}

# Salesforce field types (describe's `type`) -> DuckDB; compound types (address, location) are left out.
_TYPES = {"boolean": "BOOLEAN", "currency": "DOUBLE", "double": "DOUBLE", "percent": "DOUBLE", "int": "BIGINT",
          "long": "BIGINT", "date": "DATE", "datetime": "TIMESTAMPTZ"}
_SKIPPED = ("address", "location", "base64", "anyType", "complexvalue")
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def soql_literal(value: Any) -> str:
    """A cursor value as a SOQL literal; only typed values (never text) are written into a query."""
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # to the second: the read is then >=
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    raise SyncError(msg("a Salesforce cursor must be a date, a date-time or a number, not '{value}'. Fix: use "
                        "`cursor: system_modstamp` (the default).", value=str(value)))


class SalesforceConnector:
    """One Salesforce org: a table per object (Opportunity, Lead, Event), read with SOQL."""

    def __init__(self, source: Source, client: HttpClient, version: str):
        self.source = source
        self.client = client
        self.base = f"services/data/{version}"

    def _wanted(self) -> list[str]:
        from kpilot.sources.registry import table_specs

        wanted = {spec.table or name for name, spec in table_specs(self.source).items()}
        unknown = sorted(wanted - set(OBJECTS))
        if unknown:
            raise SyncError(msg("source '{source}': Salesforce object(s) {objects} are not supported; objects: "
                                "{supported}. Fix: correct `tables:`.", source=self.source.key,
                                objects=", ".join(unknown), supported=", ".join(OBJECTS)))
        return [o for o in OBJECTS if o in wanted]

    def discover(self) -> list[SourceTableInfo]:
        out = []
        for obj in self._wanted():
            described = self.client.get_json(f"{self.base}/sobjects/{obj}/describe")
            fields = {f["name"]: f for f in described.get("fields", []) if isinstance(f, dict) and "name" in f}
            names = [n for n in OBJECTS[obj] if n in fields]
            names += [n for n, f in fields.items() if f.get("custom") and n not in names]
            out.append(records.table(obj, [(records.snake(n), n, _TYPES.get(str(fields[n].get("type")), "VARCHAR"))
                                            for n in names if _FIELD.match(n)
                                            and fields[n].get("type") not in _SKIPPED]))
        return out

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        field = {c.name: c.source_type for c in table.columns}
        soql = f"SELECT {', '.join(field.values())} FROM {table.name}"
        if cursor is not None:
            order = field[cursor]
            soql += f" WHERE {order} != null" if after is None else f" WHERE {order} >= {soql_literal(after)}"
            soql += f" ORDER BY {order} ASC, Id ASC" if "Id" in field.values() else f" ORDER BY {order} ASC"

        def rows() -> Iterator[dict[str, Any]]:
            data = self.client.get_json(f"{self.base}/query", {"q": soql})
            while True:
                for record in data.get("records", []):
                    yield {c.name: records.parse(record.get(c.source_type), c.type) for c in table.columns}
                if data.get("done", True) or not data.get("nextRecordsUrl"):
                    return
                data = self.client.get_json(str(data["nextRecordsUrl"]))

        yield from records.batches(table, records.cursor_filter(rows(), cursor, after, inclusive), batch_size)

    def close(self) -> None:
        self.client.close()


def connector_for(source: Source, base_dir: Path, environ: Mapping[str, str] | None = None,
                  secrets: Path | None = None) -> SalesforceConnector:
    instance = records.option(source, "instance_url", required=True, example="https://mycompany.my.salesforce.com")
    var = records.option(source, "token_env", "SALESFORCE_ACCESS_TOKEN")
    token = records.secret(source, var, msg("an OAuth access token of the org (a connected app's token)"), environ,
                            secrets)
    client = records.client(
        source, instance, {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"},
        secrets=(token.reveal(),), factory=HttpClient,
        fix=msg("Fix: Salesforce answers INVALID_SESSION_ID when a session has expired (after 2 hours by default): "
                "get a new access token from the connected app and store it in {var}.", var=var))
    return SalesforceConnector(source, client, str(records.option(source, "api_version", API_VERSION)))
