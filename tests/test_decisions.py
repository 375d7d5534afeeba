"""Decisions with a measured effect on acme: the counterfactual is `kpilot forecast`'s own forecast made on the
decision's day, and the effect is measured on the raw data's values (hand-written SQL)."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from kpilot.model import KpilotError
from kpilot.model.periods import Grain
from kpilot.service import WorkspaceService
from kpilot.service.decisions import decide, expected_change, measure, review_date, review_due
from tests.cli.test_acme_cli import kpilot


def test_the_expected_effect_in_words() -> None:
    assert expected_change("+15 % demos within 3 weeks") == pytest.approx(0.15)
    assert expected_change("−10,5 % de churn") == pytest.approx(-0.105)
    assert expected_change("more demos") is None
    assert expected_change("+" + "9" * 400 + " %") is None  # not infinity
    assert review_date("+15 % démos sous 3 semaines", date(2026, 9, 16), Grain.week, None) == date(2026, 10, 7)
    assert review_date(None, date(2026, 9, 16), Grain.month, 2) == date(2026, 11, 30)  # end of the 2nd month after
    assert review_date(None, date(2026, 9, 16), Grain.week, None) == date(2026, 10, 14)


@pytest.fixture(scope="module")
def acme_ws(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("acme-decisions") / "acme"
    shutil.copytree(acme_dir, ws)
    return ws


def _weekly_demos(raw: duckdb.DuckDBPyConnection) -> dict[date, int]:
    rows = raw.execute("""SELECT date_trunc('week', booked_at)::DATE, count(*) FROM meetings
                          WHERE type = 'demo' GROUP BY 1""").fetchall()
    return {w: int(n) for w, n in rows}


def test_a_decision_measured_against_its_counterfactual(acme_ws: Path, tmp_path: Path,
                                                        acme_raw: duckdb.DuckDBPyConnection) -> None:
    state = tmp_path / "state"
    r = kpilot("decide", "demos_booked", "-w", str(acme_ws), "--action", "Deux demi-journées de prospection",
               "--expect", "+15 % de démos sous 3 semaines", "--by", "Claire", "--today", "2026-09-16",
               env_state=state)
    assert r.returncode == 0, r.stderr
    assert "effet sera mesuré le 2026-10-07" in r.stdout
    (d,) = json.loads(kpilot("decisions", "-w", str(acme_ws), "--format", "json", env_state=state).stdout)
    assert d["expected_change"] == pytest.approx(0.15) and d["review_on"] == "2026-10-07" and d["user"] == "Claire"
    assert d["owner"] == "sales" and d["period"] == "2026-W38"
    # The counterfactual: what `kpilot forecast` said on the day about the next week, and the weeks measured.
    base = d["baseline"]
    assert [p["label"] for p in base["periods"]] == ["2026-W39", "2026-W40"]
    fc = json.loads(kpilot("forecast", "-w", str(acme_ws), "--as-of", "2026-09-16", "--format", "json",
                           env_state=state).stdout)
    rows = fc if isinstance(fc, list) else fc["forecasts"]
    w39 = next(p for f in rows if f["metric"] == "demos_booked" for p in f["points"] if p["label"] == "2026-W39")
    assert base["periods"][0]["value"] == pytest.approx(w39["value"], abs=0.5)  # `kpilot forecast` shows counts whole
    # At the review date: the actual weeks from the raw data.
    r = kpilot("decisions", "-w", str(acme_ws), "--review", "--as-of", "2026-10-07", "--format", "json",
               env_state=state)
    assert r.returncode == 0, r.stderr
    effect = json.loads(r.stdout)[0]["effect"]
    demos = _weekly_demos(acme_raw)
    actual = (demos[date(2026, 9, 21)] + demos[date(2026, 9, 28)]) / 2
    before = (demos[date(2026, 9, 7)] + demos[date(2026, 8, 31)]) / 2
    assert effect["actual"] == pytest.approx(actual) and effect["before"] == pytest.approx(before)
    assert effect["actual_change"] == pytest.approx(actual / before - 1)
    forecast = sum(p["value"] for p in base["periods"]) / 2
    upper = sum(p["upper"] for p in base["periods"]) / 2
    assert effect["counterfactual"] == pytest.approx(forecast)
    # 98 demos a week against a forecast of 86 (80 % up to 114): within what was forecast, no clear effect.
    assert actual < upper and effect["verdict"] == "no_clear_effect"
    table = kpilot("decisions", "-w", str(acme_ws), env_state=state)
    assert "pas d'effet net" in table.stdout


def test_review_due_measures_once_and_tells_the_owner(acme_ws: Path, tmp_path: Path) -> None:
    from kpilot.service import alerts

    with WorkspaceService(acme_ws, state_dir=tmp_path / "state") as svc:
        svc.load()
        d = decide(svc, "pipeline_generated", action="Relancer LinkedIn", expected_effect="+20 % within 2 weeks",
                   today=date(2026, 9, 9))
        assert review_due(svc, date(2026, 9, 20)) == []  # not yet
        run = alerts.evaluate(svc, as_of=date(2026, 9, 23))
        (measured,) = [x for x in svc.app_store().decisions("acme") if x.id == d.id]
        assert measured.effect is not None and measured.effect["periods"] == ["2026-W38"]
        reviews = [m for m in svc.app_store().outbox("acme", states=["unrouted"]) if m.kind == "decision_review"]
        assert [m.recipient for m in reviews] == ["marketing"] and run.queued >= 1
        assert reviews[0].message["subject"].startswith("Bilan de décision : Pipeline généré")
        assert review_due(svc, date(2026, 9, 30)) == []  # measured once
        assert measure(svc, measured, date(2026, 9, 23)) == {**measured.effect}


def test_a_review_date_before_the_decision_is_refused(acme_ws: Path, tmp_path: Path) -> None:
    with WorkspaceService(acme_ws, state_dir=tmp_path / "state") as svc, pytest.raises(KpilotError,
                                                                                      match="must be after"):
        decide(svc, "demos_booked", action="x", review_on=date(2026, 9, 1), today=date(2026, 9, 16))


def test_deciding_on_an_alert_acknowledges_it(acme_ws: Path, tmp_path: Path) -> None:
    from kpilot.service import alerts
    from kpilot.store import StoreInvalid, StoreNotFound

    with WorkspaceService(acme_ws, state_dir=tmp_path / "state") as svc:
        svc.load()
        alerts.evaluate(svc, as_of=date(2026, 9, 13))
        store = svc.app_store()
        demos = next(a for a in store.alerts("acme") if a.metric == "demos_booked")
        mrr = next(a for a in store.alerts("acme") if a.metric == "mrr")
        with pytest.raises(StoreInvalid, match="is about mrr, not demos_booked"):
            decide(svc, "demos_booked", action="x", alert_id=mrr.id, today=date(2026, 9, 13))
        with pytest.raises(StoreNotFound, match="no alert 999"):
            decide(svc, "demos_booked", action="x", alert_id=999, today=date(2026, 9, 13))
        with pytest.raises(StoreInvalid, match="more than five years ahead"):
            decide(svc, "demos_booked", action="x", expected_effect="+5 % within 99999999 weeks",
                   today=date(2026, 9, 13))
        d = decide(svc, "demos_booked", action="Prospection", by="Claire", alert_id=demos.id, today=date(2026, 9, 13))
        assert d.alert_id == demos.id
        answered = store.alert("acme", demos.id)
        assert answered is not None and answered.state == "acknowledged" and answered.acknowledged_by == "Claire"
        with pytest.raises(StoreInvalid, match="after today"):
            alerts.snooze(svc, mrr.id, date(2020, 1, 1))
