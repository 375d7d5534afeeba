"""Ready CRM workspaces: synced from a mock HubSpot or Pipedrive, their three metrics equal hand-computed values."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpilot.service import WorkspaceService
from kpilot.templates import crm
from tests.sources.mock_apis.hubspot import HubSpotApi
from tests.sources.mock_apis.pipedrive import PipedriveApi


def _week(d: date) -> str:
    return (d - timedelta(days=d.weekday())).isoformat()


def _month(d: date) -> str:
    return d.replace(day=1).isoformat()


def _metrics(ws: Path, tmp: Path, base_url: str, monkeypatch: pytest.MonkeyPatch, var: str) -> dict[str, Any]:
    doc = yaml.safe_load((ws / "kpilot.yaml").read_text(encoding="utf-8"))
    doc["sources"][0]["options"]["base_url"] = base_url
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.setenv(var, "good-token")
    out = {}
    with WorkspaceService(ws, state_dir=tmp / "state") as svc:
        assert not svc.sync().failed
        svc.load()
        svc.compute()
        mc = svc.computer(as_of=date(2026, 12, 31))
        for key in ("pipeline_generated", "demos_booked", "win_rate"):
            s = mc.series(key)
            out[key] = {p.isoformat(): v for p, v in zip(s.periods, s.values, strict=True) if v and v == v}
    return out


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


def test_unknown_crm_names_the_ready_ones(tmp_path: Path) -> None:
    from kpilot.model.errors import KpilotError

    with pytest.raises(KpilotError, match="unknown CRM 'hubspt'; did you mean 'hubspot'"):
        crm.write(tmp_path, "hubspt")
