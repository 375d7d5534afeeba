"""Status, pacing and decision rules on hand-made series with known answers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from kpilot.analysis.status import (
    achievement,
    evaluate_rule,
    judge,
    linear_pacing,
    rag,
    seasonal_pacing,
)
from kpilot.model import Grain, WeekStart
from kpilot.model.workspace import Bands, DecisionRule, Direction, Metric, When


def _metric(**kw) -> Metric:
    base = {"key": "m", "model": "x", "measure": "count(*)", "grain": "month"}
    base.update(kw)
    return Metric.model_validate(base)


def test_linear_pacing_day_10_of_30() -> None:
    p = linear_pacing(date(2026, 11, 1), Grain.month, date(2026, 11, 10))
    assert p.share == pytest.approx(10 / 30) and p.method == "linear"
    assert linear_pacing(date(2026, 11, 1), Grain.month, date(2026, 12, 3)).method == "complete"


def test_paced_judgement_on_day_10() -> None:
    metric = _metric(bands={"green": 1.0, "amber": 0.9})
    # Target 3000 a month; on day 10 the expected share is 1000. 950 is amber, not red.
    j = judge(950.0, 3000.0, 10 / 30, metric, date(2026, 11, 1), complete=False)
    assert j.expected == pytest.approx(1000.0)
    assert j.achievement == pytest.approx(0.95)
    assert j.status == "amber"


def test_direction_down() -> None:
    assert achievement(0.025, 0.02, Direction.down) == pytest.approx(0.8)
    assert rag(achievement(0.019, 0.02, Direction.down), Bands()) == "green"
    assert rag(achievement(0.0, 0.02, Direction.down), Bands()) == "green"


def test_seasonal_pacing_uses_the_weekly_profile() -> None:
    # Past weeks: nothing on weekends, 20 per weekday. On Friday evening of a Monday week, 100 % is expected.
    daily = []
    start = date(2026, 9, 7)  # a Monday
    for d in range(8 * 7):
        day = start + timedelta(days=d)
        daily.append((day, 20.0 if day.isoweekday() <= 5 else 0.0))
    current = start + timedelta(days=8 * 7)
    friday = current + timedelta(days=4)
    seasonal = seasonal_pacing(current, Grain.week, friday, daily, WeekStart.monday)
    assert seasonal.method == "seasonal"
    assert seasonal.share == pytest.approx(1.0)
    assert linear_pacing(current, Grain.week, friday).share == pytest.approx(5 / 7)
    # Too little history: linear.
    short = seasonal_pacing(current, Grain.week, friday, daily[-14:], WeekStart.monday)
    assert short.method == "linear"


def _history(values, targets, metric):
    start = date(2026, 1, 1)
    out = []
    for i, (v, t) in enumerate(zip(values, targets, strict=True)):
        out.append(judge(v, t, 1.0, metric, date(start.year, start.month + i, 1), complete=True))
    return out


def test_rule_status_red_for_two_periods() -> None:
    rule = DecisionRule(when=When(status="red", periods=2), owner="sales", action="act")
    metric = _metric(decision=rule.model_dump())
    hist = _history([100, 80, 70], [100, 100, 100], metric)
    res = evaluate_rule(rule, hist, [h.value for h in hist], 70, metric, Grain.month, WeekStart.monday, 1.0)
    assert res.fires and res.evaluated
    hist = _history([100, 95, 70], [100, 100, 100], metric)
    assert not evaluate_rule(rule, hist, [h.value for h in hist], 70, metric, Grain.month, WeekStart.monday, 1.0).fires


def test_rule_below_target_and_forecast() -> None:
    rule = DecisionRule(when=When(below_target=0.85, periods=2), owner="m", action="a")
    metric = _metric()
    hist = _history([84, 80], [100, 100], metric)
    assert evaluate_rule(rule, hist, [84, 80], 80, metric, Grain.month, WeekStart.monday, 1.0).fires
    hist = _history([86, 80], [100, 100], metric)
    assert not evaluate_rule(rule, hist, [86, 80], 80, metric, Grain.month, WeekStart.monday, 1.0).fires
    miss = DecisionRule(when=When(forecast="miss"), owner="m", action="a")
    hist = _history([50], [100], metric)
    assert evaluate_rule(miss, hist, [50], 90, metric, Grain.month, WeekStart.monday, 0.5).fires
    assert not evaluate_rule(miss, hist, [50], 101, metric, Grain.month, WeekStart.monday, 0.5).fires


def test_young_period_is_not_judged_by_rules() -> None:
    rule = DecisionRule(when=When(status="red", periods=1), owner="m", action="a")
    metric = _metric()
    hist = _history([100], [100], metric)
    young = judge(0.0, 100.0, 0.1, metric, date(2026, 2, 1), complete=False)
    res = evaluate_rule(rule, [*hist, young], [100, 0], 0, metric, Grain.month, WeekStart.monday, 0.1)
    assert not res.fires  # day 2 of the month: the last complete period (green) decides


def test_trend_down() -> None:
    rule = DecisionRule(when=When(trend="down", periods=3), owner="m", action="a")
    metric = _metric()
    vals = [100.0, 90.0, 80.0, 70.0]
    hist = _history(vals, [None] * 4, metric)
    assert evaluate_rule(rule, hist, vals, 70, metric, Grain.month, WeekStart.monday, 1.0).fires
    vals = [100.0, 90.0, 95.0, 70.0]
    assert not evaluate_rule(rule, hist, vals, 70, metric, Grain.month, WeekStart.monday, 1.0).fires
