"""One verdict per KPI, the same at every door: `kpilot status` (JSON and table), `kpilot forecast`, the API, and
the settings saved in the web app served to the CLI too.

Acme's sources stop on 2026-11-22 (some rows are dated ahead: meetings booked for later, deals opened from them):
judged on 2026-12-06, the KPIs whose data stopped have no verdict instead of a false collapse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kpilot.service import WorkspaceService
from kpilot.templates.demo import generate_demo


def kpilot(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KPILOT_STATE_DIR=str(state), COLUMNS="240")
    return subprocess.run([sys.executable, "-m", "kpilot.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def as_json(r: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert isinstance(found, list)
    return found


@pytest.fixture(scope="module")
def acme(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("acme") / "acme"
    shutil.copytree(acme_dir, folder)
    state = tmp_path_factory.mktemp("acme-state")
    r = kpilot("load", "-w", str(folder), state=state)
    assert r.returncode == 0, r.stderr
    return folder, state


def _status(ws: Path, state: Path, as_of: str) -> dict[str, dict[str, object]]:
    return {str(s["key"]): s for s in as_json(kpilot("status", "-w", str(ws), "--as-of", as_of, "--format", "json",
                                                     state=state))}


def _forecast_now(ws: Path, state: Path, as_of: str) -> dict[str, float | None]:
    """Each KPI's forecast for the period holding the as-of date, as `kpilot forecast` prints it."""
    out = {}
    for f in as_json(kpilot("forecast", "-w", str(ws), "--as-of", as_of, "--format", "json", state=state)):
        points = f["points"]
        assert isinstance(points, list)
        out[str(f["metric"])] = points[0]["value"]
    return out


def _consistent(statuses: dict[str, dict[str, object]], forecasts: dict[str, float | None]) -> None:
    for key, s in statuses.items():
        decision = s["decision"]
        if isinstance(decision, dict) and decision["fires"]:
            assert s["verdict"] != "on_track", key
        assert s["projected"] == pytest.approx(forecasts[key], rel=1e-12), key


def test_stopped_data_has_no_verdict_not_a_collapse(acme: tuple[Path, Path]) -> None:
    ws, state = acme
    statuses = _status(ws, state, "2026-12-06")
    for key in ("demos_booked", "pipeline_generated"):
        s = statuses[key]
        assert (s["stale"], s["verdict"], s["verdict_reason"]) == (True, "no_data", "stale"), key
        assert date.fromisoformat(str(s["data_through"])) < date(2026, 11, 30), key
        decision = s["decision"]
        assert isinstance(decision, dict) and decision["fires"] is False, key  # no decision taken on a stopped source
    _consistent(statuses, _forecast_now(ws, state, "2026-12-06"))


def test_before_the_stop_nothing_is_stale_and_every_door_agrees(acme: tuple[Path, Path]) -> None:
    ws, state = acme
    statuses = _status(ws, state, "2026-11-20")
    assert {k: s["stale"] for k, s in statuses.items()} == {k: False for k in statuses}
    assert set(statuses) == {"mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn"}
    # The forecast: miss rule reads the same projection as `kpilot forecast` (was a run rate of 114.27).
    forecasts = _forecast_now(ws, state, "2026-11-20")
    _consistent(statuses, forecasts)
    demos = statuses["demos_booked"]["decision"]
    assert isinstance(demos, dict) and demos["projected"] == pytest.approx(forecasts["demos_booked"], rel=1e-12)
    # The churn rule fired on November: the verdict says so, with its evidence.
    churn = statuses["logo_churn"]
    decision = churn["decision"]
    assert isinstance(decision, dict) and decision["fires"] is True
    assert churn["verdict"] in ("at_risk", "off_track")
    assert [e["label"] for e in decision["evidence"]] == ["2026-11"]
    # The text board prints the evidence beside each rule.
    table = kpilot("status", "-w", str(ws), "--as-of", "2026-11-20", "--lang", "en", state=state)
    assert table.returncode == 0, table.stderr
    assert "Evidence: November 2026: 2.4% (target 2.0%, off track)" in table.stdout
    # Periods in words and each verdict with its shape, as on the pages.
    assert "November 2026*" in table.stdout and "2026-11" not in table.stdout
    assert ("▲ At risk" in table.stdout) == any(s["verdict"] == "at_risk" for s in statuses.values())
    assert ("◆ Off track" in table.stdout) == any(s["verdict"] == "off_track" for s in statuses.values())


def test_a_series_reads_its_judged_period_as_the_board(acme: tuple[Path, Path]) -> None:
    # Logo churn on 4 October: October so far is on track on its own, but the rule fires on August and September,
    # so the board says "at risk"; `kpilot series` and the API say the same of October (and the same words).
    ws, state = acme
    day = "2026-10-04"
    churn = _status(ws, state, day)["logo_churn"]
    assert (churn["status"], churn["verdict"]) == ("green", "at_risk")
    colours = {"on_track": "green", "at_risk": "amber", "off_track": "red", "no_data": "none"}
    for key, s in _status(ws, state, day).items():
        rows = as_json(kpilot("series", key, "-w", str(ws), "--as-of", day, "--format", "json", state=state))
        row = next(r for r in rows if r["period"] == s["period"])
        assert (row["status"], row["verdict"]) == (colours[str(s["verdict"])], s["verdict"]), key
        assert all("verdict" not in r for r in rows if r is not row), key  # only the judged period has one
    table = kpilot("series", "logo_churn", "-w", str(ws), "--as-of", day, "--from", "2026-10", "--lang", "en",
                   state=state)
    assert table.returncode == 0, table.stderr
    assert "At risk" in table.stdout and "On track" not in table.stdout
    from kpilot.web.app import create_app

    with WorkspaceService(ws, state_root=state) as svc:
        state_dir = svc.state_dir
    with TestClient(create_app(ws, state_dir=state_dir), base_url="http://127.0.0.1") as client:
        rows = client.get(f"/api/v1/metrics/logo_churn/series?as_of={day}").json()
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert [(r["status"], r.get("verdict")) for r in rows if r["period"] == "2026-10-01"] == [("amber", "at_risk")]


def test_a_stopped_source_reads_no_data_in_its_series_not_no_target(acme: tuple[Path, Path]) -> None:
    # Demos booked on 6 December: its source stopped, the board says "No data" (not judged). Its series, in the
    # table and on the KPI page, says the same words for that week, not "No target" (it has one).
    ws, state = acme
    day = "2026-12-06"
    assert _status(ws, state, day)["demos_booked"]["verdict"] == "no_data"
    r = kpilot("series", "demos_booked", "-w", str(ws), "--as-of", day, "--from", "2026-11-30", "--lang", "en",
               state=state)
    assert r.returncode == 0, r.stderr
    assert "No data" in r.stdout and "No target" not in r.stdout, r.stdout
    from kpilot.web.app import create_app

    with WorkspaceService(ws, state_root=state) as svc:
        state_dir = svc.state_dir
    with TestClient(create_app(ws, state_dir=state_dir), base_url="http://127.0.0.1") as client:
        page = client.get(f"/metric/demos_booked?as_of={day}").text
    table = page[page.index('class="history-table"'):]
    table = table[table.index("<tr data-status"):]
    first = table[:table.index("</tr>")]
    assert "Pas de données" in first and "Sans objectif" not in first, first


def test_settings_saved_in_the_web_app_are_served_to_the_cli(acme: tuple[Path, Path]) -> None:
    ws, state = acme
    before = _status(ws, state, "2026-11-20")["win_rate"]
    assert before["target"] == pytest.approx(0.32)
    with WorkspaceService(ws, state_root=state) as svc:
        svc.save_settings("win_rate", {"targets": [{"from": "2026-01-01", "to": "2026-12-01", "value": 0.25}]})
    try:
        after = _status(ws, state, "2026-11-20")["win_rate"]
        assert after["target"] == pytest.approx(0.25)
        assert after["verdict"] == "on_track"  # 28.0 % against 25 %
    finally:
        with WorkspaceService(ws, state_root=state) as svc:
            svc.reset_settings("win_rate")
    assert _status(ws, state, "2026-11-20")["win_rate"]["target"] == pytest.approx(0.32)


def test_settings_through_the_api_are_checked_like_kpilot_yaml(acme: tuple[Path, Path]) -> None:
    from kpilot.web.app import create_app

    ws, state = acme
    with WorkspaceService(ws, state_root=state) as svc:
        state_dir = svc.state_dir
    app = create_app(ws, state_dir=state_dir)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        bad = client.put("/api/v1/metrics/win_rate/settings", json={"bands": {"green": 0.8, "amber": 0.9}})
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["issues"][0]["field"].startswith("bands")
        ok = client.put("/api/v1/metrics/win_rate/settings", json={"owners": ["marketing"]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["owners"] == ["marketing"]
        assert client.get("/api/v1/metrics/win_rate").json()["owners"] == ["marketing"]
        unknown = client.put("/api/v1/metrics/nope/settings", json={"owners": ["sales"]})
        assert unknown.status_code == 404
        back = client.put("/api/v1/metrics/win_rate/settings", json={"owners": None})
        assert back.json()["owners"] == ["sales"]
    with WorkspaceService(ws, state_root=state) as svc:
        assert svc.settings() == {}


def test_the_demo_agrees_with_itself(tmp_path: Path) -> None:
    folder = generate_demo(tmp_path / "demo", today=date(2026, 11, 20)).parent
    state = tmp_path / "state"
    assert kpilot("load", "-w", str(folder), state=state).returncode == 0
    statuses = _status(folder, state, "2026-11-20")
    _consistent(statuses, _forecast_now(folder, state, "2026-11-20"))
    # Net new MRR is a flow (the change of a level): its month in progress is judged at pace.
    everything = {str(s["key"]): s for s in as_json(kpilot("status", "-w", str(folder), "--as-of", "2026-11-06",
                                                           "--all", "--format", "json", state=state))}
    net = everything["net_new_mrr"]
    assert net["nature"] == "flow"
    assert net["pacing_method"] in ("linear", "seasonal")
    assert float(str(net["pacing_share"])) < 0.5
