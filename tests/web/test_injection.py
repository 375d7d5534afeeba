"""Hostile input through every door of the web app: each path and query parameter a route declares (read from the
app's router, so a new route is covered without editing this file), the query parameters the pages read
themselves, the JSON bodies of the API (built from its OpenAPI schema), the forms, the push endpoint and the
headers that are read or echoed.

Each answer must be clean (below 500, a JSON error under /api/ and an HTML page elsewhere, no traceback, no
template evaluated) and nothing outside what was asked may change: a canary file beside the state folder, a
canary row in the warehouse and in the application database, the warehouse's set of tables."""

from __future__ import annotations

import html
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from kpilot.web import create_app
from kpilot.web.locale import COOKIE
from kpilot.web.settings import SESSION_COOKIE
from tests.web.test_push import CALLS

BASE = "http://127.0.0.1"
AS_OF = "2026-11-15"
YAML = """
workspace: hostile
title: Hostile
language: en
timezone: Europe/Paris
sources:
  - {key: files, type: csv, path: data/}
  - {key: crm, type: push, tables: [calls]}
models:
  - {key: leads, table: leads, time: created_at, dimensions: [channel]}
  - {key: calls, table: calls, time: at, dimensions: [rep]}
  - {key: pushed, table: pushed_metric_values, time: period}
metrics:
  - {key: leads, model: leads, measure: count(*), grain: month, owners: [sales],
     targets: [{from: 2026-01, value: 2}]}
  - {key: call_minutes, model: calls, measure: sum(minutes), grain: month}
  - {key: minutes_per_lead, type: derived, formula: call_minutes / leads, grain: month}
  - {key: nps, model: pushed, measure: sum(value), filter: "metric = 'nps'", grain: month}
teams:
  - {key: sales, name: Sales}
north_star: call_minutes
board: [leads, nps, minutes_per_lead]
"""
CHANNELS = "id,created_at,channel\n1,2026-10-02,web\n2,2026-10-20,ads\n3,2026-11-04,web\n"

# Each payload once: SQL, table functions, paths, templates, NUL, size, invisible and bidirectional characters, CRLF.
PAYLOADS = {
    "drop": "'; DROP TABLE calls; --",
    "or": '" OR 1=1 --',
    "union": "1) UNION SELECT table_name, 1, 1 FROM information_schema.tables --",
    "read_text": "read_text('/etc/passwd')",
    "traversal": "../../etc/passwd",
    "canary_path": "../canary.txt",
    "jinja": "kp{{7*7}}kp",
    "dollar": "kp${7*7}kp",
    "nul": "call\x00minutes",
    "long": "A" * 100_000,
    "unicode": "\u202ecall_minutes\u200b\u200d\ufeff",
    "crlf": "x\r\nSet-Cookie: injected=1\r\nX-Injected: 1",
}
PASSWORD = "a long and good password 4 tests"
NOTE = "The canary note"  # an annotation that nothing may change
# A URL carries at most ~16 KiB through a real server (h11's limit on a request line); bodies take the 100k.
URL_PAYLOADS = {**PAYLOADS, "long": "A" * 8_000}
EVALUATED = "kp49kp"  # what the two template payloads become if anything evaluates them
PASSWD = "root:x:0:0"
HOSTNAME = Path("/etc/hostname").read_text(encoding="utf-8").strip() if Path("/etc/hostname").exists() else ""
LEAKS = re.compile(r"Traceback \(most recent call last\)|\bduckdb\.\w*(?:Error|Exception)\b|_duckdb\.|"
                   r"sqlalchemy\.exc|sqlite3\.\w+Error|jinja2\.exceptions|File \"/")
# A valid value for each path parameter a route declares, so that one parameter at a time carries the payload.
VALID_PATH = {"key": "call_minutes", "code": "en", "path": "metrics", "alert_id": "1", "message_id": "1"}
# Fields the JSON bodies and the forms need, valid; the payload replaces one of them at a time.
VALID_FIELD = {"metric": "call_minutes", "period": "2026-11", "action": "Call the reps", "text": "A note",
               "status": "open", "owner": "sales", "by": "sales", "note": "ok", "until": "2026-12-01",
               "email": "nobody@example.com", "password": "not-a-password", "next": "/"}


@dataclass
class Served:
    """The app over a writable workspace, with its canaries."""

    client: TestClient
    state: Path
    canary_file: Path
    canary_text: str
    decision_id: int
    tables: set[str]
    app_tables: set[str]
    users: int


def _routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) of every route with a FastAPI dependant; an included router is walked into (FastAPI
    keeps it whole from 0.16x on, flattened before)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            context = getattr(r, "include_context", None)
            yield from _routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif getattr(r, "dependant", None) is not None:
            yield prefix + r.path, r


def _read_query_names() -> set[str]:
    """The query parameters the web package reads itself (request.query_params.get("...")), not declared."""
    names: set[str] = set()
    for source in (Path(__file__).resolve().parents[2] / "src" / "kpilot" / "web").glob("*.py"):
        names |= set(re.findall(r"query_params\.get\(\s*\"(\w+)\"", source.read_text(encoding="utf-8")))
    return names


def _warehouse(client: TestClient, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the app's own warehouse connection (the sandboxed one requests use)."""
    gate = client.app.state.gate  # type: ignore[attr-defined]
    with gate.service() as svc:
        rows: list[tuple[Any, ...]] = svc.con.execute(sql).fetchall()
    return rows


def _warehouse_tables(client: TestClient) -> set[str]:
    return {r[0] for r in _warehouse(client, "SELECT table_schema || '.' || table_name FROM information_schema.tables")}


def _app_db(state: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{state / 'app.db'}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@contextmanager
def _serve(root: Path, users: int = 0) -> Iterator[Served]:
    """The app over a new workspace in `root`, its canaries laid, with `users` users (0: open to all)."""
    ws = root / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    (ws / "data" / "leads.csv").write_text(CHANNELS, encoding="utf-8")
    state = root / "state"
    canary_text = f"kpilot-canary-{secrets.token_hex(16)}"
    canary_file = root / "canary.txt"  # beside the state folder: ../canary.txt from it
    canary_file.write_text(canary_text, encoding="utf-8")
    with TestClient(create_app(ws, state_dir=state), base_url=BASE) as c:
        canary_row = {"at": "2026-11-01T08:00:00", "minutes": 42, "rep": "canary-rep"}
        assert c.post("/api/v1/push", json={"table": "calls", "rows": [*CALLS, canary_row]}).status_code == 200
        assert c.post("/api/v1/push", json={"metric": "nps", "period": "2026-10", "value": 45}).status_code == 200
        assert c.post("/api/v1/annotations", json={"metric": "leads", "period": "2026-10",
                                                   "text": NOTE}).status_code == 201
        made = c.post("/api/v1/decisions", json={"metric": "leads", "period": "2026-11", "action": "target"})
        assert made.status_code == 201, made.text
        for i in range(users):
            c.app.state.accounts().create_user(f"user{i}@example.com", role="admin",  # type: ignore[attr-defined]
                                               password=PASSWORD)
        tables = _warehouse_tables(c)
        assert "main.calls" in tables and "main.leads" in tables
        app_tables = {r[0] for r in _app_db(state, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        yield Served(c, state, canary_file, canary_text, int(made.json()["id"]), tables, app_tables, users)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with _serve(tmp_path_factory.mktemp("injection")) as s:
        yield s


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app once a user exists: every route asks who is there; the sign-in page shows."""
    with _serve(tmp_path_factory.mktemp("injection-users"), users=1) as s:
        yield s


_LINE_BREAK = re.compile(r"[\r\n]")


def _problems(served: Served, r: httpx.Response, what: str) -> list[str]:
    """What is wrong with an answer: a 500, a traceback or a driver's exception, a leaked file, an evaluated
    template, an injected header, a redirect to another host, an error that is neither JSON (API) nor a page."""
    where = f"{r.request.method} {str(r.request.url)[:160]} ({what}): {r.status_code}"
    text = r.text
    out = []
    if r.status_code >= 500:
        out.append(f"{where} {text[:300]}")
    leak = LEAKS.search(text)
    if leak is not None:
        out.append(f"{where}: {leak.group(0)!r} in the answer")
    if served.canary_text in text:
        out.append(f"{where}: the canary file's content in the answer")
    if PASSWD in text:
        out.append(f"{where}: /etc/passwd in the answer")
    if len(HOSTNAME) >= 6 and HOSTNAME in text:  # a short name ("vm") is found in any page by chance
        out.append(f"{where}: /etc/hostname in the answer")
    if EVALUATED in text:
        out.append(f"{where}: a template was evaluated")
    if "x-injected" in {k.lower() for k in r.headers} or any("injected" in v for v in r.headers.get_list("set-cookie")):
        out.append(f"{where}: an injected header")
    location = r.headers.get("location")
    if location is not None and (not location.startswith("/") or location.startswith(("//", "/\\"))
                                 or urlsplit(urljoin(BASE + "/", location)).netloc != "127.0.0.1"
                                 or any(ord(ch) < 32 for ch in location)):
        out.append(f"{where}: redirects to {location!r}")
    if 400 <= r.status_code < 500:
        kind = r.headers.get("content-type", "")
        if r.request.url.path.startswith("/api/"):
            error = r.json().get("error") if kind.startswith("application/json") else None
            if _LINE_BREAK.search(r.request.url.path) and r.json() == {"detail": "Not Found"}:
                pass  # a known gap, see test_an_api_path_with_a_line_break_is_an_api_error
            elif not (isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]):
                out.append(f"{where}: not the API's JSON error: {text[:200]}")
        elif not ((kind.startswith("text/html") and "<html" in text) or kind.startswith("application/json")):
            out.append(f"{where}: neither an error page nor JSON ({kind})")
    return out


class Checked:
    """The problems of every answer sent through it, reported together at the end of a test."""

    def __init__(self, served: Served):
        self.served = served
        self.problems: list[str] = []
        self.count = 0

    def send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        r: httpx.Response = self.served.client.request(method, url, follow_redirects=False, **kwargs)
        self.count += 1
        self.problems += _problems(self.served, r, what)
        return r

    def done(self, at_least: int) -> None:
        assert self.problems == [], f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems[:30])
        assert self.count >= at_least
        _unchanged(self.served)


def _unchanged(served: Served) -> None:
    """Nothing outside what was asked changed: the canary file, the warehouse's tables and canary row, the
    application database's tables and canary note; no user was created."""
    assert served.canary_file.read_text(encoding="utf-8") == served.canary_text
    assert _warehouse_tables(served.client) == served.tables
    assert _warehouse(served.client, "SELECT minutes FROM calls WHERE rep = 'canary-rep'") == [(42.0,)]
    assert {r[0] for r in _app_db(served.state, "SELECT name FROM sqlite_master WHERE type = 'table'")} == \
        served.app_tables
    assert _app_db(served.state, "SELECT metric, text FROM annotations WHERE text = 'The canary note'") == \
        [("leads", NOTE)]
    assert _app_db(served.state, "SELECT count(*) FROM users") == [(served.users,)]


def _fill(template: str, values: dict[str, str]) -> str:
    """A route's path with each {param} (or {param:path}) replaced by its URL-quoted value."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: quote(values[m.group(1)], safe=""), template)


def _sample(names: list[str], offset: int, count: int) -> list[str]:
    """`count` payload names starting at `offset`, cycling: each field gets a different share of the payloads,
    and every payload reaches every kind of field."""
    return [names[(offset + i) % len(names)] for i in range(count)]


def test_every_declared_path_and_query_parameter(served: Served) -> None:
    routes = list(_routes(served.client.app.routes))  # type: ignore[attr-defined]
    assert len(routes) >= 40  # the walk found the pages and the API, not only the top level
    valid = {**VALID_PATH, "decision_id": str(served.decision_id)}
    checked = Checked(served)
    for path, route in routes:
        path_names = [p.name for p in route.dependant.path_params]
        query_names = [p.alias or p.name for p in route.dependant.query_params]
        for method in sorted(route.methods - {"HEAD"}):
            for name in path_names:
                for payload in URL_PAYLOADS.values():
                    url = _fill(path, {**valid, name: payload}) + f"?as_of={AS_OF}"
                    checked.send(method, url, f"path parameter {name}")
            for name in query_names:
                for payload in URL_PAYLOADS.values():
                    checked.send(method, _fill(path, valid), f"query parameter {name}", params={name: payload})
    checked.done(at_least=400)


def test_the_query_parameters_pages_read_themselves(served: Served) -> None:
    """?as_of=, ?range=, ?next=, ?metric=... read from request.query_params (found in the web package's source),
    sent to every page that takes no path parameter and to a metric's pages."""
    names = sorted(_read_query_names())
    assert {"as_of", "range", "next", "metric"} <= set(names)
    pages = [path for path, route in _routes(served.client.app.routes)  # type: ignore[attr-defined]
             if "GET" in route.methods and not path.startswith("/api/") and "{" not in path]
    pages += ["/metric/call_minutes", "/metric/leads/history.svg", "/settings/metric/leads"]
    checked = Checked(served)
    order = list(URL_PAYLOADS)
    others = [n for n in names if n != "as_of"]
    for i, page in enumerate(pages):
        for payload in order:  # a bad date is refused before anything is computed: every payload, every page
            checked.send("GET", page, f"?as_of= ({payload})", params={"as_of": URL_PAYLOADS[payload]})
        # The others make a page to render: one request per page, each parameter a payload of its own (over the
        # pages, each parameter gets every payload).
        params = {n: URL_PAYLOADS[order[(i + j) % len(order)]] for j, n in enumerate(others)}
        checked.send("GET", page, f"?{'&'.join(others)}", params={**params, "as_of": AS_OF})
    assert len(pages) >= len(order)
    checked.done(at_least=len(pages) * (len(order) + 1))


def _schema(served: Served) -> dict[str, Any]:
    spec = served.client.get("/api/v1/openapi.json").json()
    assert spec["paths"]
    return dict(spec)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _valid(name: str, prop: dict[str, Any]) -> object:
    """A valid value of a body's property, from its name and JSON schema."""
    types = {t.get("type") for t in prop.get("anyOf", [prop])} - {"null"}
    enum = next((t["enum"] for t in prop.get("anyOf", [prop]) if "enum" in t), None)
    if enum:
        return enum[0]
    if "integer" in types or "number" in types:
        return 1
    if "array" in types:
        return []
    if "object" in types:
        return {}
    if name in ("review_on", "until"):
        return "2026-12-20"
    return VALID_FIELD.get(name, "x")


def _hostile(prop: dict[str, Any], payload: str) -> object:
    """The payload in the shape a property takes: as a string, a list of strings, an object's key and value."""
    types = {t.get("type") for t in prop.get("anyOf", [prop])} - {"null"}
    if "array" in types:
        return [payload, {"from": payload, "value": payload}] if "object" in str(prop) else [payload]
    if "object" in types:
        return {payload: payload, "green": payload, "when": {"status": payload}, "owner": payload, "action": payload}
    return payload


def test_every_body_field_of_the_api(served: Served) -> None:
    """Each property of each JSON body the OpenAPI schema describes, one at a time, the others valid."""
    spec = _schema(served)
    valid_path = {**VALID_PATH, "key": "leads", "decision_id": str(served.decision_id)}
    checked = Checked(served)
    order = list(PAYLOADS)
    bodies = 0
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None or path.endswith("/push"):  # the push has a test of its own
                continue
            schema = _resolve(spec, content["schema"])
            props = schema.get("properties", {})
            base = {n: _valid(n, p) for n, p in props.items() if n in schema.get("required", []) or n == "period"}
            url = _fill(path, valid_path)
            bodies += 1
            for i, (name, prop) in enumerate(props.items()):
                for payload in _sample(order, i, 6):
                    body = {**base, name: _hostile(prop, PAYLOADS[payload])}
                    checked.send(method.upper(), url, f"{name} ({payload})", json=body)
    assert bodies >= 6  # settings, decisions (2), annotations, alerts' ack and snooze
    checked.done(at_least=100)


def test_pushed_values_and_rows(served: Served) -> None:
    """Pushed values and rows: the metric, the period, the table, a column's name and its value. A value lands
    in the warehouse as it was sent, as data: the table holds the text, and no other table changes."""
    checked = Checked(served)
    for name, payload in PAYLOADS.items():
        checked.send("POST", "/api/v1/push", f"metric ({name})", json={"metric": payload, "period": "2026-11",
                                                                         "value": 1})
        checked.send("POST", "/api/v1/push", f"period ({name})", json={"metric": "nps", "period": payload,
                                                                         "value": 1})
        checked.send("POST", "/api/v1/push", f"values[0].metric ({name})",
                     json={"values": [{"metric": payload, "period": "2026-11", "value": 1}]})
        checked.send("POST", "/api/v1/push", f"table ({name})", json={"table": payload, "rows": [{"rep": "x"}]})
        checked.send("POST", "/api/v1/push", f"a column's name ({name})", json={
            "table": "calls", "rows": [{"at": "2026-11-02T10:00:00", "minutes": 1, "rep": "col", payload: 1}]})
        checked.send("POST", "/api/v1/push", f"time ({name})", json={
            "table": "calls", "rows": [{"at": payload, "minutes": 1, "rep": "t"}]})
        r = checked.send("POST", "/api/v1/push", f"a value ({name})", json={
            "table": "calls", "rows": [{"at": "2026-11-02T10:00:00", "minutes": 1, "rep": payload}]})
        if name not in ("nul",):  # text in the application database cannot hold NUL (PostgreSQL): refused
            assert r.status_code == 200, f"{name}: {r.text[:300]}"
    for name in ("", " ", "\x00", "a\x00b", "x\r\ny", "\x7f"):  # names no warehouse column can have: refused
        r = checked.send("POST", "/api/v1/push", f"a column named {name!r}", headers={"Accept-Language": "en"}, json={
            "table": "calls", "rows": [{"at": "2026-11-02T10:00:00", "minutes": 1, "rep": "col", name: 1}]})
        assert r.status_code == 422, f"{name!r}: {r.status_code} {r.text[:300]}"
        assert r.json()["error"]["message"].startswith("rows[0]: a column's name must be text without control")
    after = checked.send("POST", "/api/v1/push", "after", json={
        "table": "calls", "rows": [{"at": "2026-11-02T10:00:00", "minutes": 1, "rep": "after"}]})
    assert after.status_code == 200, after.text
    pushed = {r[0] for r in _warehouse(served.client, "SELECT DISTINCT rep FROM calls")}
    stored = {p for n, p in PAYLOADS.items() if n != "nul"}
    assert stored | {"after"} <= pushed  # the values are data in the warehouse, byte for byte, and the table still
    # takes new rows: no column name pushed before broke its materialization
    checked.done(at_least=len(PAYLOADS) * 7)


def _template_fields() -> list[str]:
    """Every form field the page templates declare (name="..."), so that a new field is covered too."""
    folder = Path(__file__).resolve().parents[2] / "src" / "kpilot" / "web" / "templates"
    names: set[str] = set()
    for template in folder.glob("*.html"):
        names |= set(re.findall(r"<(?:input|select|textarea)[^>]*\bname=\"(\w+)\"", template.read_text("utf-8")))
    return sorted(names - {"csrf"})


def _token(served: Served) -> str:
    page = served.client.get("/decisions")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


def test_every_form_field(served: Served) -> None:
    """Each field of the templates' forms, posted to each form route (one field hostile, the others valid)."""
    fields = _template_fields()
    assert {"action", "text", "period", "metric", "owners", "target_value", "next"} <= set(fields)
    forms = [path for path, route in _routes(served.client.app.routes)  # type: ignore[attr-defined]
             if "POST" in route.methods and not path.startswith("/api/")]
    assert {"/decisions", "/settings/metric/{key}", "/metric/{key}/annotations", "/login"} <= set(forms)
    valid_path = {**VALID_PATH, "key": "leads", "decision_id": str(served.decision_id)}
    checked = Checked(served)
    order = list(PAYLOADS)
    token = _token(served)
    for i, path in enumerate(forms):
        url = _fill(path, valid_path) + f"?as_of={AS_OF}"
        base = {n: VALID_FIELD.get(n, "") for n in fields} | {"csrf": token}
        for j, name in enumerate(fields):
            for payload in _sample(order, i + j, 1):  # one per field and form: each form gets every payload
                checked.send("POST", url, f"{name} ({payload})", data={**base, name: PAYLOADS[payload]})
    checked.done(at_least=len(forms) * len(fields))


OFF_SITE = ["//evil.example/", "/\\evil.example", "\\/evil.example", "https://evil.example/", "/\t/evil.example",
            "%2F%2Fevil.example", "/%2F%2Fevil.example", "/\r\nLocation: https://evil.example/", "javascript:alert(1)",
            "/%0d%0aSet-Cookie:%20injected=1", " //evil.example", "/x\r\nX-Injected: 1"]


def test_redirects_stay_on_this_server(served: Served) -> None:
    """?next= of /lang/{code} and /login, and the sign-in form's `next`: a Location on this host only, with no
    header injected (the checks of every answer)."""
    checked = Checked(served)
    token = _token(served)
    for target in [*OFF_SITE, *PAYLOADS.values()]:
        r = checked.send("GET", "/lang/fr", "next", params={"next": target[:8_000]})
        assert r.status_code == 303
        checked.send("GET", "/login", "next", params={"next": target[:8_000]})
        checked.send("POST", "/login", "next", data={"csrf": token, "email": "a@b.example", "password": "x",
                                                     "next": target})
    checked.done(at_least=3 * (len(OFF_SITE) + len(PAYLOADS)))


def test_headers_that_are_read(served: Served) -> None:
    """Idempotency-Key (echoed in the push's answer), Accept-Language, the language and session cookies."""
    checked = Checked(served)
    for name, payload in PAYLOADS.items():
        try:
            headers = httpx.Headers({"Idempotency-Key": payload[:8_000]})
        except (UnicodeEncodeError, ValueError):
            continue  # a header must be Latin-1 text: no client can send it
        sent = [payload for k, payload in headers.raw]
        if any(b"\r" in v or b"\n" in v for v in sent):
            continue  # no HTTP server hands a header with CR/LF to the app
        checked.send("POST", "/api/v1/push", f"Idempotency-Key ({name})", headers=headers,
                     json={"metric": "nps", "period": "2026-11", "value": 1})
    for name, payload in URL_PAYLOADS.items():
        if "\r" in payload or "\n" in payload:
            continue
        checked.send("GET", "/api/v1/metrics/nope", f"Accept-Language ({name})",
                     headers={"Accept-Language": payload.encode("utf-8")})
        served.client.cookies.clear()
        served.client.cookies.update({COOKIE: quote(payload), SESSION_COOKIE: quote(payload)})
        checked.send("GET", f"/?as_of={AS_OF}", f"language and session cookies ({name})")
    served.client.cookies.clear()
    checked.done(at_least=20)


def test_stored_payloads_are_shown_as_text(served: Served) -> None:
    """Payloads stored through the API (a note, a decision, a decision rule, a team of a pushed row) and then shown
    by every page and list: shown as sent, never evaluated, and no page fails."""
    checked = Checked(served)
    short = {n: p for n, p in PAYLOADS.items() if n not in ("long", "nul")}  # refused by the fields' limits
    for name, payload in short.items():
        checked.send("POST", "/api/v1/annotations", f"text ({name})",
                     json={"metric": "call_minutes", "period": "2026-11", "text": payload})
        checked.send("POST", "/api/v1/decisions", f"action ({name})",
                     json={"metric": "call_minutes", "period": "2026-11", "action": payload, "by": payload,
                           "note": payload, "owner": payload})
    checked.send("POST", "/api/v1/push", "reps", json={"table": "calls", "rows": [
        {"at": "2026-11-03T11:00:00", "minutes": 2, "rep": payload} for payload in short.values()]})
    rule = {"when": {"status": "red"}, "owner": "sales", "action": " ".join(short.values())}
    r = checked.send("PUT", "/api/v1/metrics/leads/settings", "decision rule", json={"decision": rule})
    assert r.status_code == 200, r.text
    pages = [path for path, route in _routes(served.client.app.routes)  # type: ignore[attr-defined]
             if "GET" in route.methods and "{" not in path and path not in ("/review.pdf",)]
    pages += [f"/metric/{key}" for key in ("call_minutes", "leads", "nps", "minutes_per_lead")]
    pages += ["/settings/metric/leads", "/metric/call_minutes/history.svg", "/api/v1/metrics/leads"]
    shown = ""
    for page in pages:
        shown += checked.send("GET", page, "stored payloads", params={"as_of": AS_OF}).text
    text = html.unescape(shown)
    assert PAYLOADS["jinja"] in text and PAYLOADS["dollar"] in text  # they reached the pages ...
    assert PAYLOADS["drop"] in text and PAYLOADS["or"] in text  # ... and are shown as text
    checked.done(at_least=len(pages) + 2 * len(short))


def test_an_api_path_with_a_line_break_is_an_api_error(served: Served) -> None:
    r = served.client.get("/api/v1/x%0Ay")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "no API endpoint GET /api/v1/xy."  # the control character left out


def test_signing_in_goes_back_to_this_server_only(signed: Served) -> None:
    """Once a user exists: the sign-in page with a hostile ?next=, a sign-in that succeeds with a hostile `next`
    (the redirect that follows it), and hostile credentials and API tokens."""
    checked = Checked(signed)
    for target in [*OFF_SITE, *URL_PAYLOADS.values()]:
        page = checked.send("GET", "/login", "next", params={"next": target})
        assert page.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token, page.text[:300]
        if target not in OFF_SITE:
            continue  # a sign-in costs a password hash: the off-site targets (CR/LF ones included) are signed in with
        r = checked.send("POST", "/login", "next after a good password", data={
            "csrf": token.group(1), "email": "user0@example.com", "password": PASSWORD, "next": target})
        assert r.status_code == 303, r.text[:300]
        signed.client.cookies.clear()
    for name, payload in PAYLOADS.items():
        token = re.search(r'name="csrf" value="([^"]+)"', signed.client.get("/login").text)
        assert token
        checked.send("POST", "/login", f"email ({name})", data={"csrf": token.group(1), "email": payload,
                                                               "password": payload, "next": "/"})
        if "\r" not in payload and "\n" not in payload:
            r = checked.send("GET", "/api/v1/metrics", f"Authorization ({name})",
                             headers={"Authorization": b"Bearer " + payload[:8_000].encode("utf-8")})
            assert r.status_code == 401, f"{name}: {r.status_code}"
    signed.client.cookies.clear()
    checked.done(at_least=2 * len(OFF_SITE) + len(URL_PAYLOADS) + len(PAYLOADS))
