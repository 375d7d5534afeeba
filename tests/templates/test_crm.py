"""Ready SaaS workspaces: synced from a mock HubSpot, Pipedrive, Salesforce, GA4 or Brevo, their metrics equal
values computed by hand from the mock's objects."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpilot.compute.metrics import MetricComputer
from kpilot.service import WorkspaceService
from kpilot.templates import crm
from tests.sources.mock_apis import brevo as brevo_mock
from tests.sources.mock_apis import ga4 as ga4_mock
from tests.sources.mock_apis import salesforce as salesforce_mock
from tests.sources.mock_apis.brevo import BrevoApi
from tests.sources.mock_apis.ga4 import Ga4Api
from tests.sources.mock_apis.hubspot import HubSpotApi
from tests.sources.mock_apis.pipedrive import PipedriveApi
from tests.sources.mock_apis.salesforce import SalesforceApi

CRM_METRICS = ("pipeline_generated", "demos_booked", "win_rate")


def _week(d: date) -> str:
    return (d - timedelta(days=d.weekday())).isoformat()


def _month(d: date) -> str:
    return d.replace(day=1).isoformat()


def _values(mc: MetricComputer, key: str) -> dict[str, float]:
    s = mc.series(key)
    return {p.isoformat(): v for p, v in zip(s.periods, s.values, strict=True) if v and v == v}


def _computed(ws: Path, tmp: Path, options: dict[str, Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
              keys: tuple[str, ...] = CRM_METRICS, by: str | None = None) -> dict[str, Any]:
    """Sync the ready workspace (its source pointed at the mock), compute it; each metric's values by period,
    and per value of the dimension `by` under the key `<metric>/<value>`."""
    doc = yaml.safe_load((ws / "kpilot.yaml").read_text(encoding="utf-8"))
    doc["sources"][0]["options"].update(options)
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    out: dict[str, Any] = {}
    with WorkspaceService(ws, state_dir=tmp / "state") as svc:
        assert not svc.sync().failed
        svc.load()
        svc.compute()
        mc = svc.computer(as_of=date(2026, 12, 31))
        for key in keys:
            out[key] = _values(mc, key)
            if by:
                for (value,), s in mc.breakdown(key, [by]).items():
                    out[f"{key}/{value}"] = {p.isoformat(): v for p, v in zip(s.periods, s.values, strict=True)
                                             if v and v == v}
    return out


def _metrics(ws: Path, tmp: Path, base_url: str, monkeypatch: pytest.MonkeyPatch, var: str) -> dict[str, Any]:
    return _computed(ws, tmp, {"base_url": base_url}, {var: "good-token"}, monkeypatch)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def _win_rate(closed: list[tuple[date, str]]) -> dict[str, float]:
    won: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for d, status in closed:
        total[_month(d)] += 1
        won[_month(d)] += status == "won"
    return {m: won[m] / total[m] for m in total if won[m]}


def test_hubspot_workspace_computes_pipeline_demos_and_win_rate(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    crm.write(ws, "hubspot")
    with HubSpotApi() as api:
        got = _metrics(ws, tmp_path, api.url, monkeypatch, "HUBSPOT_TOKEN")
    pipeline: dict[str, float] = defaultdict(float)
    closed = []
    for d in api.objects["deals"]:
        p = d["properties"]
        pipeline[_week(_utc(p["createdate"]).date())] += float(p["amount"])
        if p["dealstage"] in ("closedwon", "closedlost"):
            closed.append((_utc(p["closedate"]).date(), "won" if p["dealstage"] == "closedwon" else "lost"))
    demos: dict[str, int] = defaultdict(int)
    for m in api.objects["meetings"]:
        demos[_week(_utc(m["properties"]["hs_createdate"]).date())] += 1
    assert got["pipeline_generated"] == pytest.approx(dict(pipeline))
    assert got["demos_booked"] == pytest.approx(dict(demos))
    assert got["win_rate"] == pytest.approx(_win_rate(closed))


def test_pipedrive_workspace_computes_pipeline_demos_and_win_rate(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    crm.write(ws, "pipedrive")
    with PipedriveApi() as api:
        got = _metrics(ws, tmp_path, api.url, monkeypatch, "PIPEDRIVE_TOKEN")
    pipeline: dict[str, float] = defaultdict(float)
    closed = []
    for d in api.objects["deals"]:
        pipeline[_week(datetime.fromisoformat(d["add_time"]).date())] += d["value"]
        if d["status"] in ("won", "lost"):
            closed.append((datetime.fromisoformat(d["close_time"]).date(), d["status"]))
    demos: dict[str, int] = defaultdict(int)
    for a in api.objects["activities"]:
        if a["type"] == "demo":
            demos[_week(datetime.fromisoformat(a["add_time"]).date())] += 1
    assert got["pipeline_generated"] == pytest.approx(dict(pipeline))
    assert got["demos_booked"] == pytest.approx(dict(demos))
    assert got["win_rate"] == pytest.approx(_win_rate(closed))


def _sf_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC).replace(tzinfo=None)


def test_salesforce_workspace_computes_pipeline_demos_and_win_rate(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    crm.write(ws, "salesforce")
    objects = salesforce_mock.sample()
    for event in objects["Event"]:  # an org that added "Demo" to the Type picklist, as the template says
        if event["Subject"] == "Demo":
            event["Type"] = "Demo"
    with SalesforceApi(objects) as api:
        got = _computed(ws, tmp_path, {"instance_url": api.url}, {"SALESFORCE_ACCESS_TOKEN": api.token},
                        monkeypatch)
    pipeline: dict[str, float] = defaultdict(float)
    closed = []
    for o in objects["Opportunity"]:
        pipeline[_week(_sf_time(o["CreatedDate"]).date())] += o["Amount"]
        if o["IsClosed"]:
            closed.append((date.fromisoformat(o["CloseDate"]), "won" if o["IsWon"] else "lost"))
    demos: dict[str, int] = defaultdict(int)
    for e in objects["Event"]:
        if e["Type"] == "Demo":
            demos[_week(_sf_time(e["CreatedDate"]).date())] += 1
    assert demos and len(demos) < len(objects["Event"])  # some events are demos, not all
    assert got["pipeline_generated"] == pytest.approx(dict(pipeline))
    assert got["demos_booked"] == pytest.approx(dict(demos))
    assert got["win_rate"] == pytest.approx(_win_rate(closed))


def test_ga4_workspace_computes_traffic_and_conversion_rate_by_channel(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    crm.write(ws, "ga4")
    rows = ga4_mock.sample(days=40, today=date(2026, 3, 20))
    with Ga4Api(rows) as api:
        got = _computed(ws, tmp_path, {"base_url": f"{api.url}/v1beta"},
                        {"GA4_KEY_FILE": str(api.key_file(tmp_path))}, monkeypatch,
                        keys=("sessions", "users", "key_events", "conversion_rate"), by="channel")
    sums: dict[tuple[str, str, str], float] = defaultdict(float)  # (metric, channel or '', week) -> total
    for r in rows:
        for metric, field in (("sessions", "sessions"), ("users", "totalUsers"), ("key_events", "keyEvents")):
            for channel in ("", r["sessionDefaultChannelGroup"]):
                sums[(metric, channel, _week(r["date"]))] += r[field]

    def expected(metric: str, channel: str = "") -> dict[str, float]:
        if metric == "conversion_rate":
            return {w: sums[("key_events", channel, w)] / sums[("sessions", channel, w)]
                    for (m, c, w) in sums if m == "sessions" and c == channel and sums[("key_events", channel, w)]}
        return {w: v for (m, c, w), v in sums.items() if m == metric and c == channel and v}

    for metric in ("sessions", "users", "key_events", "conversion_rate"):
        assert got[metric] == pytest.approx(expected(metric)), metric
        for channel, _ in ga4_mock.CHANNELS:
            assert got[f"{metric}/{channel}"] == pytest.approx(expected(metric, channel)), (metric, channel)


def test_brevo_workspace_computes_open_and_click_rates_by_month(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    crm.write(ws, "brevo")
    campaigns = brevo_mock.sample()
    with BrevoApi(campaigns) as api:
        got = _computed(ws, tmp_path, {"base_url": api.base_url}, {"BREVO_API_KEY": api.token}, monkeypatch,
                        keys=("open_rate", "click_rate"))
    delivered: dict[str, int] = defaultdict(int)
    opens: dict[str, int] = defaultdict(int)
    clicks: dict[str, int] = defaultdict(int)
    for c in campaigns:
        if c["sentDate"] is None:  # a draft: sent in no month
            continue
        month = _month(_utc(c["sentDate"]).date())
        stats = c["statistics"]["globalStats"]
        delivered[month] += stats["delivered"]
        opens[month] += stats["uniqueViews"]
        clicks[month] += stats["uniqueClicks"]
    assert len(delivered) >= 2
    assert got["open_rate"] == pytest.approx({m: opens[m] / delivered[m] for m in delivered if opens[m]})
    assert got["click_rate"] == pytest.approx({m: clicks[m] / delivered[m] for m in delivered if clicks[m]})


@pytest.mark.parametrize("source", sorted(crm.READY))
@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_ready_workspace_validates_in_both_languages(tmp_path: Path, source: str, language: str) -> None:
    path = crm.write(tmp_path / f"{source}-{language}", source, language=language)
    with WorkspaceService(path.parent, state_dir=tmp_path / "state") as svc:
        assert svc.ws.language.value == language
        assert svc.ws.sources[0].type == source
        errors = [i for i in svc.validate(with_data=False) if i.severity == "error"]
    assert errors == []


def test_an_unknown_source_names_the_ready_ones(tmp_path: Path) -> None:
    from kpilot.model.errors import KpilotError

    with pytest.raises(KpilotError, match="no ready workspace for the source type 'hubspt'; did you mean 'hubspot'"):
        crm.write(tmp_path, "hubspt")


@pytest.mark.parametrize("source", sorted(crm.READY))
def test_the_french_workspace_defines_the_same_metrics_as_the_english_one(tmp_path: Path, source: str) -> None:
    def definitions(language: str) -> dict[str, Any]:
        doc = yaml.safe_load(crm.write(tmp_path / language, source, language=language).read_text(encoding="utf-8"))
        for metric in doc["metrics"]:
            metric.pop("name")
            metric.pop("description")
        return {k: doc[k] for k in ("sources", "models", "metrics")}

    assert definitions("fr") == definitions("en")


def test_kpilot_init_writes_a_ready_workspace_for_each_saas_source(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kpilot.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["init", str(tmp_path / "web"), "--source", "ga4", "--language", "fr"])
    assert done.exit_code == 0, done.output
    doc = yaml.safe_load((tmp_path / "web" / "kpilot.yaml").read_text(encoding="utf-8"))
    assert (doc["language"], doc["sources"][0]["type"]) == ("fr", "ga4")
    done = runner.invoke(app, ["init", str(tmp_path / "sales"), "--crm", "salesforce"])
    assert done.exit_code == 0, done.output
    assert yaml.safe_load((tmp_path / "sales" / "kpilot.yaml").read_text())["sources"][0]["type"] == "salesforce"
    both = runner.invoke(app, ["init", str(tmp_path / "x"), "--crm", "hubspot", "--source", "brevo"])
    assert both.exit_code == 1
    assert "name two sources" in both.output
    assert not (tmp_path / "x" / "kpilot.yaml").exists()
