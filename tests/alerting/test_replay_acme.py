"""`kpilot alerts replay` on acme over 2026: every off-track week alerted, nobody flooded, the LinkedIn pause one story
raised weeks before won revenue falls. Won revenue's fall is measured on the raw CSV, independently of kpilot."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from kpilot.service import WorkspaceService
from kpilot.service.alerts import replay
from tests.cli.test_acme_cli import kpilot

FIRST, LAST = date(2026, 1, 5), date(2026, 11, 22)
PAUSE = date(2026, 8, 31)  # LinkedIn ads paused for three weeks from this Monday (the data's story)


@pytest.fixture(scope="module")
def acme_ws(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("acme-alerts") / "acme"
    shutil.copytree(acme_dir, ws)
    return ws


@pytest.fixture(scope="module")
def replayed(acme_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with WorkspaceService(acme_ws, state_dir=tmp_path_factory.mktemp("acme-alerts-state")) as svc:
        svc.load()
        return replay(svc, FIRST, LAST)


def test_every_off_track_week_of_a_board_kpi_has_its_alert(replayed: dict[str, Any]) -> None:
    alerted = {(a["week"], a["metric"]) for a in replayed["alerts"]}
    off = [(week, metric) for week, verdicts in replayed["verdicts"].items() for metric, v in verdicts.items()
           if v == "off_track"]
    assert len(replayed["verdicts"]) == 46  # every week from 5 Jan to the week of 16 Nov
    assert len(off) > 50
    assert [w for w in off if w not in alerted] == []


def test_the_replayed_verdicts_are_the_boards(replayed: dict[str, Any], acme_ws: Path,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    with WorkspaceService(acme_ws, state_dir=tmp_path_factory.mktemp("acme-board-state")) as svc:
        svc.load()
        for monday in ("2026-03-02", "2026-09-07", "2026-10-12"):
            sunday = date.fromisoformat(monday) + timedelta(days=6)
            board = {s.key: s.verdict.value for s in svc.board(as_of=sunday)}
            assert replayed["verdicts"][monday] == board


def test_nobody_gets_more_than_five_messages_a_week(replayed: dict[str, Any]) -> None:
    per_week = [n for weeks in replayed["pings"].values() for n in weeks.values()]
    assert set(replayed["pings"]) == {"sales", "marketing", "customer_success"}
    assert max(per_week) <= 5
    # Every message counted is one the replay says was sent to that team that week.
    sent = Counter((t, a["week"]) for a in replayed["alerts"] for t in a["pinged"])
    assert sent == Counter({(t, w): n for t, weeks in replayed["pings"].items() for w, n in weeks.items()})


def _won_revenue_first_off_track_week(acme_raw: duckdb.DuckDBPyConnection) -> date:
    """The first of two weeks in a row, from the pause on, with won revenue under 80 % of its median of the 13
    weeks before the pause: computed on the raw deals, not by kpilot."""
    rows = acme_raw.execute("""
        SELECT date_trunc('week', closed_at)::DATE AS week, sum(amount_eur) AS won
        FROM deals WHERE stage = 'won' GROUP BY 1 ORDER BY 1""").fetchall()
    weekly = dict(rows)
    before = sorted(weekly.get(PAUSE - timedelta(weeks=k), 0.0) for k in range(1, 14))
    usual = before[6]
    week = PAUSE
    while week < date(2026, 11, 23):
        if all(weekly.get(week + timedelta(weeks=k), 0.0) < 0.8 * usual for k in (0, 1)):
            return week
        week += timedelta(weeks=1)
    raise AssertionError("won revenue never fell")


def test_the_linkedin_pause_is_one_story_raised_three_weeks_before_won_revenue_falls(
        replayed: dict[str, Any], acme_raw: duckdb.DuckDBPyConnection) -> None:
    fall = _won_revenue_first_off_track_week(acme_raw)
    assert fall == date(2026, 9, 21)
    in_pause = {a["metric"]: a for a in replayed["alerts"] if a["week"] == "2026-09-07"}
    story = in_pause["demos_booked"]["story"]
    # The leading KPIs that dipped with the pause are one chain, not one alert each.
    assert in_pause["pipeline_generated"]["story"] == story
    chain = [a for a in replayed["alerts"] if a["story"] == story]
    raised = min(date.fromisoformat(a["week"]) for a in chain)
    assert (fall - raised).days >= 21
    # The chain messaged each of its teams once, when it was raised.
    pinged = [(a["week"], t) for a in chain for t in a["pinged"]]
    assert sorted(t for _, t in pinged) == ["marketing", "sales"]
    assert {w for w, _ in pinged} == {raised.isoformat()}


def test_the_cli_replays_as_json(acme_ws: Path, tmp_path: Path) -> None:
    r = kpilot("alerts", "replay", "-w", str(acme_ws), "--from", "2026-09-07", "--to", "2026-09-14", "--format",
               "json", env_state=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted({a["week"] for a in out["alerts"]}) == ["2026-09-07", "2026-09-14"]
    demos = next(a for a in out["alerts"] if a["metric"] == "demos_booked" and a["week"] == "2026-09-07")
    assert demos["verdict"] == "off_track" and demos["recipients"] == ["sales", "marketing"]
    assert out["pings"]["sales"]["2026-09-07"] >= 1
