"""One verdict per KPI: the mapping from status and rule, and whether data still arrives (freshness)."""

from __future__ import annotations

from datetime import date, timedelta

from kpilot.analysis.status import MIN_ELAPSED_FOR_RULES, assess
from kpilot.analysis.verdict import Freshness, Verdict, freshness, stalest, verdict_of
from kpilot.model.periods import WeekStart
from kpilot.model.workspace import Metric

FRESH = Freshness(None, False, 7)


def _days(first: date, last: date, rows: int, *, weekdays_only: bool = False) -> list[tuple[date, float]]:
    out = []
    d = first
    while d <= last:
        if not weekdays_only or d.weekday() < 5:
            out.append((d, float(rows)))
        d += timedelta(days=1)
    return out


def test_verdict_from_status_and_rule() -> None:
    assert verdict_of("green", fires=False, stale=False, has_value=True, has_target=True) == (Verdict.on_track, None)
    assert verdict_of("amber", fires=False, stale=False, has_value=True, has_target=True) == (Verdict.at_risk, None)
    assert verdict_of("red", fires=False, stale=False, has_value=True, has_target=True) == (Verdict.off_track, None)
    # A firing rule makes a green period at least at risk; a red one stays off track.
    assert verdict_of("green", fires=True, stale=False, has_value=True, has_target=True) == (Verdict.at_risk, None)
    assert verdict_of("red", fires=True, stale=False, has_value=True, has_target=True) == (Verdict.off_track, None)
    # No target, no value, stale data: no verdict, and why.
    assert verdict_of("none", fires=False, stale=False, has_value=True, has_target=False) == (Verdict.no_data,
                                                                                              "no_target")
    assert verdict_of("none", fires=False, stale=False, has_value=False, has_target=True) == (Verdict.no_data,
                                                                                              "no_value")
    assert verdict_of("red", fires=True, stale=True, has_value=True, has_target=True) == (Verdict.no_data, "stale")


def test_a_source_that_stops_is_stale_from_a_week_on() -> None:
    rows = _days(date(2026, 1, 1), date(2026, 11, 22), 20)
    assert freshness(rows, date(2026, 11, 20)) == Freshness(date(2026, 11, 20), False, 7)
    at_29 = freshness(rows, date(2026, 11, 29))
    assert (at_29.data_through, at_29.stale) == (date(2026, 11, 22), False)  # 7 days: not yet
    at_30 = freshness(rows, date(2026, 11, 30))
    assert (at_30.data_through, at_30.stale) == (date(2026, 11, 22), True)


def test_rows_dated_ahead_do_not_keep_a_stopped_source_alive() -> None:
    # 20 rows a day until the 22nd, then a trickle of rows dated ahead (meetings booked for later) every day.
    rows = _days(date(2026, 1, 1), date(2026, 11, 22), 20) + _days(date(2026, 11, 23), date(2026, 12, 6), 2)
    found = freshness(rows, date(2026, 12, 6))
    assert (found.data_through, found.stale) == (date(2026, 11, 22), True)


def test_weekends_and_monthly_batches_are_not_stale() -> None:
    weekdays = _days(date(2026, 1, 1), date(2026, 11, 20), 30, weekdays_only=True)  # 2026-11-20 is a Friday
    monday = freshness(weekdays, date(2026, 11, 23))
    assert (monday.data_through, monday.stale) == (date(2026, 11, 20), False)
    # One row on the first of each month: a month and a half without a row is the source's normal rhythm.
    monthly = [(date(2026, m, 1), 1.0) for m in range(1, 12)]
    found = freshness(monthly, date(2026, 12, 15))
    assert (found.data_through, found.stale) == (date(2026, 11, 1), False)
    assert freshness(monthly, date(2027, 2, 20)).stale is True  # three months and a half: stopped


def test_no_row_at_all_is_not_stale_but_has_no_date() -> None:
    assert freshness([], date(2026, 12, 6)) == Freshness(None, False, 7)


def test_several_tables_are_as_fresh_as_the_first_that_stopped() -> None:
    alive = Freshness(date(2026, 12, 5), False, 7)
    stopped = Freshness(date(2026, 11, 22), True, 7)
    assert stalest([alive, stopped]) == stopped
    assert stalest([alive, Freshness(date(2026, 12, 1), False, 7)]).data_through == date(2026, 12, 1)


def _churn() -> Metric:
    return Metric.model_validate({
        "key": "logo_churn", "type": "ratio", "grain": "month", "direction": "down", "unit": "percent",
        "numerator": {"model": "s", "measure": "count(*)"}, "denominator": {"model": "s", "measure": "count(*)"},
        "targets": [{"from": date(2026, 1, 1), "to": date(2026, 12, 1), "value": 0.02}],
        "decision": {"when": {"status": "red"}, "owner": "cs", "action": "call"}})


def test_a_rule_that_fired_on_the_last_complete_period_shows_in_the_verdict() -> None:
    # On 6 December (19 % of the month: rules look at November), November's churn was red, December's 0 % is
    # green so far: the verdict is at risk, and the evidence names November and its value.
    periods = [date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)]
    a = assess(_churn(), periods, [0.018, 0.027, 0.0], current=date(2026, 12, 1), through=date(2026, 12, 6),
               additive=False, week_start=WeekStart.monday, projected=0.022, fresh=FRESH)
    assert MIN_ELAPSED_FOR_RULES > 6 / 31
    assert a.current is not None and a.current.status == "green"
    assert a.rule is not None and a.rule.fires is True
    assert a.verdict is Verdict.at_risk
    assert [(j.period, j.value, j.status) for j in a.rule.window] == [(date(2026, 11, 1), 0.027, "red")]


def test_stale_data_takes_no_decision() -> None:
    periods = [date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)]
    stale = Freshness(date(2026, 11, 22), True, 7)
    a = assess(_churn(), periods, [0.018, 0.027, 0.0], current=date(2026, 12, 1), through=date(2026, 11, 22),
               additive=False, week_start=WeekStart.monday, projected=0.022, fresh=stale)
    assert a.rule is not None and (a.rule.fires, a.rule.evaluated) == (False, False)
    assert (a.verdict, a.verdict_reason) == (Verdict.no_data, "stale")


def test_a_flow_in_progress_is_compared_with_the_same_point_of_the_previous_period() -> None:
    metric = Metric.model_validate({"key": "demos", "model": "m", "measure": "count(*)", "grain": "week",
                                    "targets": [{"from": date(2026, 1, 1), "value": 70}]})
    # 10 a day; this week (from Monday 2026-11-30) has had 3 days at 10: the same as last week's first 3 days.
    daily = _days(date(2026, 11, 23), date(2026, 12, 2), 10)
    a = assess(metric, [date(2026, 11, 23), date(2026, 11, 30)], [70.0, 30.0], current=date(2026, 11, 30),
               through=date(2026, 12, 2), additive=True, week_start=WeekStart.monday, projected=70.0, fresh=FRESH,
               daily=daily)
    assert (a.previous, a.previous_to_date, a.change) == (30.0, True, 0.0)
