"""Google Analytics 4: sessions, users and conversions by date, channel and campaign (Data API v1beta).

`POST /v1beta/properties/{id}:runReport` with the dimensions `date`, `sessionDefaultChannelGroup` and
`sessionCampaignName` and the metrics `sessions`, `totalUsers` and `keyEvents` (or `conversions`, their name
before 2024), read page by page with `limit`/`offset` until `rowCount` rows are read. Authentication is a
service account: its JSON key file (named by an environment variable) signs a JWT (RS256) that the key's
`token_uri` exchanges for an access token (Google's OAuth 2.0 server-to-server flow).

The cursor is the report date. GA4 data settles for about 72 hours, so every sync reads again the last
`settle_days` days before the last committed date, and those rows replace their copies by primary key
(date, channel, campaign).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from kpilot.model.errors import msg
from kpilot.model.workspace import Source, SourceTable
from kpilot.sources.base import SourceTableInfo, SyncError
from kpilot.sources.saas import records
from kpilot.sources.saas.http import HttpClient

BASE_URL = "https://analyticsdata.googleapis.com/v1beta"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PAGE = 10_000

DEFAULT_TABLES: dict[str, SourceTable] = {
    "ga4_traffic": SourceTable(table="traffic", cursor="date", primary_key=["date", "channel", "campaign"]),
}
# column, GA4 dimension or metric, DuckDB type; the conversion metric is an option.
_DIMENSIONS = (("date", "date", "DATE"), ("channel", "sessionDefaultChannelGroup", "VARCHAR"),
               ("campaign", "sessionCampaignName", "VARCHAR"))
_METRICS = (("sessions", "sessions", "BIGINT"), ("users", "totalUsers", "BIGINT"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed_jwt(key: Mapping[str, Any], now: float | None = None) -> str:
    """The assertion a service account sends to its token URI: a JWT signed (RS256) with its private key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    issued = int(now if now is not None else time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": key.get("private_key_id", "")}
    claims = {"iss": key["client_email"], "scope": SCOPE, "aud": key["token_uri"], "iat": issued,
              "exp": issued + 3600}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    private = serialization.load_pem_private_key(str(key["private_key"]).encode(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    signature = private.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


class Ga4Connector:
    """One GA4 property: a table `traffic`, one row per date, channel and campaign."""

    def __init__(self, source: Source, key: dict[str, Any], property_id: str, conversion: str):
        self.source = source
        self.key = key
        self.path = f"properties/{property_id}:runReport"
        self.conversion = conversion
        self.settle_days = records.number(source, "settle_days", 3, int)
        self.start_date = str(records.option(source, "start_date", "2020-01-01"))
        self.page = records.number(source, "page_size", PAGE, int)
        self.client: HttpClient | None = None
        self._expires = 0.0

    def _token(self) -> tuple[str, float]:
        try:
            assertion = signed_jwt(self.key)
        except (KeyError, ValueError, TypeError):
            raise SyncError(msg("source '{source}': the service account key file has no usable `private_key`, "
                                "`client_email` or `token_uri`. Fix: download a new JSON key of the service "
                                "account (Google Cloud console > IAM > Service accounts > Keys).",
                                source=self.source.key)) from None
        try:
            resp = httpx.post(str(self.key["token_uri"]), data={"grant_type": GRANT, "assertion": assertion},
                              timeout=records.number(self.source, "timeout", 30))
        except httpx.HTTPError as exc:
            raise SyncError(msg("source '{source}': the token server {url} could not be reached: {reason}",
                                source=self.source.key, url=str(self.key["token_uri"]),
                                reason=str(exc) or type(exc).__name__)) from None
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code != 200 or not data.get("access_token"):
            raise SyncError(msg("source '{source}': the service account key was refused ({status}: {reason}). "
                                "Fix: check that the key is current (not deleted in the Google Cloud console) and "
                                "that the computer's clock is right.", source=self.source.key,
                                status=resp.status_code, reason=str(data.get("error_description") or data.get(
                                    "error") or resp.reason_phrase)))
        return str(data["access_token"]), time.time() + float(data.get("expires_in") or 3600)

    def _api(self) -> HttpClient:
        """The Data API client, with a fresh access token when the current one is about to expire."""
        if self.client is None or time.time() > self._expires - 60:
            token, self._expires = self._token()
            if self.client is not None:
                self.client.close()
            self.client = records.client(
                self.source, BASE_URL, {"Authorization": f"Bearer {token}"}, secrets=(token,), factory=HttpClient,
                fix=msg("Fix: give the service account {email} the Viewer role on GA4 property {path} (Admin > "
                        "Property access management).", email=str(self.key.get("client_email")),
                        path=self.path.split(":")[0]))
        return self.client

    def columns(self) -> list[tuple[str, str, str]]:
        # keyEvents is what GA4 called conversions before 2024: one column. Another metric is another column
        # (so that the table is copied afresh rather than mixing two measures).
        name = "conversions" if self.conversion in ("keyEvents", "conversions") else records.snake(self.conversion)
        return [*_DIMENSIONS, *_METRICS, (name, self.conversion, "BIGINT")]

    def discover(self) -> list[SourceTableInfo]:
        return [records.table("traffic", self.columns())]

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        if cursor not in (None, "date"):
            raise SyncError(msg("source '{source}': a GA4 report's cursor is `date`, not `{cursor}`. Fix: write "
                                "`cursor: date`.", source=self.source.key, cursor=cursor))
        start = self.start_date
        if isinstance(after, date):
            # Settling data: read again the last days before the committed date (they replace their copies).
            start = (after - timedelta(days=self.settle_days)).isoformat()
        yield from records.batches(table, self._rows(table, start), batch_size)

    def _rows(self, table: SourceTableInfo, start: str) -> Iterator[dict[str, Any]]:
        dims = [c for c in table.columns if c.source_type in {d[1] for d in _DIMENSIONS}]
        mets = [c for c in table.columns if c not in dims]
        offset = 0
        while True:
            body = {
                "dateRanges": [{"startDate": start, "endDate": "today"}],
                "dimensions": [{"name": c.source_type} for c in dims],
                "metrics": [{"name": c.source_type} for c in mets],
                "orderBys": [{"dimension": {"dimensionName": "date"}}],
                "limit": self.page, "offset": offset,
            }
            data = self._api().post_json(self.path, body)
            names = [h.get("name") for h in data.get("dimensionHeaders", [])]
            metric_names = [h.get("name") for h in data.get("metricHeaders", [])]
            rows = data.get("rows") or []
            for row in rows:
                values = dict(zip(names, (v.get("value") for v in row.get("dimensionValues", [])), strict=False))
                values.update(zip(metric_names, (v.get("value") for v in row.get("metricValues", [])), strict=False))
                yield {c.name: records.parse(values.get(c.source_type), c.type) for c in table.columns}
            offset += len(rows)
            if not rows or offset >= int(data.get("rowCount") or 0):
                return

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def connector_for(source: Source, base_dir: Path, environ: Mapping[str, str] | None = None,
                  secrets: Path | None = None) -> Ga4Connector:
    from kpilot.sources.registry import table_specs

    property_id = str(records.option(source, "property_id", required=True, example="'123456789'"))
    for name, spec in table_specs(source).items():
        if spec.cursor and not spec.key_columns:
            raise SyncError(msg("source '{source}', table {table}: a GA4 report read incrementally needs "
                                "`primary_key: [date, channel, campaign]`: its last days are read again and must "
                                "replace their copies.", source=source.key, table=name))
    var = records.option(source, "credentials_env", "GOOGLE_APPLICATION_CREDENTIALS")
    where = records.secret(source, var, msg("the path of the service account's JSON key file"), environ, secrets)
    path = Path(where.reveal()).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SyncError(msg("source '{source}': the service account key file {path} (named by {var}) does not "
                            "exist. Fix: correct {var}.", source=source.key, path=str(path), var=var)) from None
    except (OSError, ValueError):
        raise SyncError(msg("source '{source}': the service account key file {path} is not a readable JSON key. "
                            "Fix: download the key again as JSON.", source=source.key, path=str(path))) from None
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise SyncError(msg("source '{source}': {path} is not a service account key (its `type` must be "
                            "`service_account`).", source=source.key, path=str(path)))
    key.setdefault("token_uri", "https://oauth2.googleapis.com/token")
    conversion = str(records.option(source, "conversion_metric", "keyEvents"))
    return Ga4Connector(source, key, property_id, conversion)
