"""Google Analytics Data API v1beta and Google's OAuth 2.0 token endpoint for service accounts, as documented.

- POST /token (form: grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion=<JWT>) -> {"access_token",
  "expires_in", "token_type": "Bearer"}; the JWT's RS256 signature is checked with the key's public part, and its
  `iss`, `aud`, `scope`; a bad one: 400 {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}.
- POST /v1beta/properties/{id}:runReport (body: dateRanges, dimensions, metrics, orderBys, limit, offset) ->
  {"dimensionHeaders": [{"name"}], "metricHeaders": [{"name", "type"}], "rows": [{"dimensionValues": [{"value"}],
  "metricValues": [{"value"}]}], "rowCount", "metadata", "kind": "analyticsData#runReport"}; dates as YYYYMMDD,
  metric values as strings; rowCount is the whole result's size, whatever limit and offset.
- A refused token: 401 {"error": {"code": 401, "message": ..., "status": "UNAUTHENTICATED"}}; an unknown metric:
  400 {"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}.
"""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.sources.mock_apis import Answer, MockApi, Request

EMAIL = "kpilot-reader@demo-project.iam.gserviceaccount.com"
PROPERTY = "123456789"
CHANNELS = (("Organic Search", "(organic)"), ("Paid Search", "spring_sale"), ("Email", "newsletter"))
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sample(days: int = 21, today: date | None = None) -> list[dict[str, Any]]:
    end = today or date.today()
    rows = []
    for d in range(days):
        day = end - timedelta(days=days - 1 - d)
        for k, (channel, campaign) in enumerate(CHANNELS):
            sessions = 40 + 13 * k + (d * 7) % 23
            rows.append({"date": day, "sessionDefaultChannelGroup": channel, "sessionCampaignName": campaign,
                         "sessions": sessions, "totalUsers": sessions - 5 - k, "keyEvents": (d + k) % 4,
                         "conversions": (d + k) % 4, "newUsers": sessions // 3})
    return rows


class Ga4Api(MockApi):
    token = "ya29.mock-access-token"

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.rows = rows if rows is not None else sample()
        self.metrics = {"sessions", "totalUsers", "keyEvents", "newUsers"}
        self.issued: list[str] = []

    def key_file(self, folder: Path, key: rsa.RSAPrivateKey | None = None) -> Path:
        """A service account's JSON key, as the Google Cloud console downloads it, pointing at this server."""
        pem = (key or _KEY).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
        path = folder / "service-account.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "demo-project", "private_key_id": "abc123",
            "private_key": pem, "client_email": EMAIL, "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": f"{self.url}/token"}))
        return path

    def change(self, day: date, channel: str, **metrics: Any) -> None:
        for r in self.rows:
            if r["date"] == day and r["sessionDefaultChannelGroup"] == channel:
                r.update(metrics)

    def authorized(self, req: Request) -> bool:
        return req.path == "/token" or req.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Answer:
        return Answer(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials. "
                                      "Expected OAuth 2 access token, login cookie or other valid authentication "
                                      "credential.", "status": "UNAUTHENTICATED"}})

    def handle(self, req: Request) -> Answer:
        if req.path == "/token" and req.method == "POST":
            return self.exchange(req.body or {})
        prefix, _, rest = req.path.rpartition("/properties/")
        if req.method == "POST" and prefix == "/v1beta" and rest == f"{PROPERTY}:runReport":
            return self.report(req.body or {})
        return Answer(404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})

    def exchange(self, form: dict[str, str]) -> Answer:
        refused = Answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Answer(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        try:
            head, claims, signature = form["assertion"].split(".")
            _KEY.public_key().verify(_unb64(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(),
                                     hashes.SHA256())
            data = json.loads(_unb64(claims))
        except (KeyError, ValueError, InvalidSignature):
            return refused
        if data.get("iss") != EMAIL or data.get("aud") != f"{self.url}/token" or "analytics" not in data.get("scope"):
            return Answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."})
        self.issued.append(self.token)
        return Answer(200, {"access_token": self.token, "expires_in": 3599, "token_type": "Bearer"})

    def report(self, body: dict[str, Any]) -> Answer:
        dims = [d["name"] for d in body.get("dimensions", [])]
        mets = [m["name"] for m in body.get("metrics", [])]
        for m in mets:
            if m not in self.metrics:
                return Answer(400, {"error": {"code": 400, "message": f"Field {m} is not a valid metric. For a "
                                              "list of valid dimensions and metrics, see https://developers.google"
                                              ".com/analytics/devguides/reporting/data/v1/api-schema",
                                              "status": "INVALID_ARGUMENT"}})
        span = body["dateRanges"][0]
        start, end = _day(span["startDate"]), _day(span["endDate"])
        rows = sorted((r for r in self.rows if start <= r["date"] <= end),
                      key=lambda r: tuple(str(r[d]) for d in dims))
        offset, limit = int(body.get("offset", 0)), int(body.get("limit", 10_000))
        page = [{"dimensionValues": [{"value": r[d].strftime("%Y%m%d") if d == "date" else r[d]} for d in dims],
                 "metricValues": [{"value": str(r[m])} for m in mets]} for r in rows[offset:offset + limit]]
        answer: dict[str, Any] = {
            "dimensionHeaders": [{"name": d} for d in dims],
            "metricHeaders": [{"name": m, "type": "TYPE_INTEGER"} for m in mets],
            "rowCount": len(rows), "metadata": {"currencyCode": "EUR", "timeZone": "Europe/Paris"},
            "kind": "analyticsData#runReport"}
        if page:  # GA4 leaves `rows` out of an empty answer
            answer["rows"] = page
        return Answer(200, answer)


def _day(text: str) -> date:
    if text == "today":
        return date.today()
    if text == "yesterday":
        return date.today() - timedelta(days=1)
    if text.endswith("daysAgo"):
        return date.today() - timedelta(days=int(text[:-7]))
    return date.fromisoformat(text)
