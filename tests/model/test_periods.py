from __future__ import annotations

from datetime import date

import pytest

from kpilot.model import Grain, WeekStart
from kpilot.model.periods import label, parse_period, period_range, period_start, periods_between, shift
from kpilot.model.targets import target_for
from kpilot.model.workspace import Metric


@pytest.mark.parametrize(("ws", "expected"), [
    (WeekStart.monday, date(2026, 11, 23)), (WeekStart.sunday, date(2026, 11, 22)),
    (WeekStart.saturday, date(2026, 11, 21)), (WeekStart.thursday, date(2026, 11, 26)),
])
def test_week_start(ws: WeekStart, expected: date) -> None:
    assert period_start(date(2026, 11, 26), Grain.week, ws) == expected


def test_period_references() -> None:
    assert parse_period("2026-Q3") == (Grain.quarter, date(2026, 7, 1))
    assert parse_period("2026-W01") == (Grain.week, date(2025, 12, 29))
    assert period_range("2026-02") == (date(2026, 2, 1), date(2026, 3, 1))
    with pytest.raises(ValueError, match="write it as 2026, 2026-Q1"):
        parse_period("Q3 2026")
    assert label(date(2026, 11, 23), Grain.week) == "2026-W48"
    assert label(date(2026, 11, 22), Grain.week, WeekStart.sunday) == "2026-11-22"
    assert shift(date(2026, 1, 1), Grain.quarter, -1) == date(2025, 10, 1)
    assert len(periods_between(date(2026, 1, 15), date(2026, 12, 2), Grain.month)) == 12


def test_targets_per_period_and_prorated() -> None:
    m = Metric.model_validate({"key": "p", "model": "x", "measure": "sum(a)", "grain": "week",
                               "targets": [{"from": "2026-01", "to": "2026-12", "value": 700}]})
    assert target_for(m, date(2026, 3, 2), Grain.week, WeekStart.monday, True) == 700
    assert target_for(m, date(2025, 12, 29), Grain.week, WeekStart.monday, True) is None  # starts in 2025
    # A month of a weekly sum: 100 a day.
    assert target_for(m, date(2026, 2, 1), Grain.month, WeekStart.monday, True) == pytest.approx(2800)
    ratio = Metric.model_validate({"key": "r", "type": "ratio", "grain": "month",
                                   "numerator": {"model": "x", "measure": "count(*)"},
                                   "denominator": {"model": "x", "measure": "count(*)"},
                                   "targets": [{"from": "2026-01", "to": "2026-06", "value": 0.3},
                                               {"from": "2026-07", "to": "2026-12", "value": 0.4}]})
    assert target_for(ratio, date(2026, 4, 1), Grain.quarter, WeekStart.monday, False) == 0.3
    assert target_for(ratio, date(2026, 7, 1), Grain.quarter, WeekStart.monday, False) == 0.4


def test_parse_day_takes_only_a_date_within_range() -> None:
    from datetime import date

    from kpilot.model.periods import NotADay, parse_day

    assert parse_day(" 2026-11-09 ") == date(2026, 11, 9)
    assert parse_day("1900-01-01") == date(1900, 1, 1) and parse_day("2199-12-31") == date(2199, 12, 31)
    for text in ("2026-11", "2026-W46", "2026-02-30", "tomorrow", ""):
        with pytest.raises(NotADay, match="is not a date; write it as YYYY-MM-DD") as bad:
            parse_day(text)
        assert not bad.value.out_of_range
    for text in ("1899-12-31", "2200-01-01", "9999-12-31"):
        with pytest.raises(NotADay, match=f"as_of {text} is out of range") as far:
            parse_day(text)
        assert far.value.out_of_range
