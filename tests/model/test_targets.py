"""Which target applies to a period: `from`..`to` inclusive, and `from` alone until the next target starts."""

from __future__ import annotations

from datetime import date

import pytest

from kpilot.model.periods import Grain, WeekStart
from kpilot.model.targets import native_target, target_for, target_spans
from kpilot.model.workspace import Metric, Target


def _metric(targets: list[dict[str, object]], grain: str = "month") -> Metric:
    return Metric.model_validate({"key": "m", "model": "x", "measure": "sum(a)", "grain": grain,
                                  "targets": targets})


def test_from_alone_lasts_for_ever_when_no_target_follows() -> None:
    m = _metric([{"from": "2025-01", "value": 40}])
    assert native_target(m, date(2024, 12, 1)) is None
    assert native_target(m, date(2025, 1, 1)) == 40
    assert native_target(m, date(2025, 2, 1)) == 40
    assert native_target(m, date(2031, 6, 1)) == 40


def test_from_alone_lasts_until_the_next_target_starts_whatever_their_order() -> None:
    m = _metric([{"from": "2026-Q1", "value": 60}, {"from": "2025-01", "value": 40}])
    assert [native_target(m, date(2025, month, 1)) for month in (1, 6, 12)] == [40, 40, 40]
    assert [native_target(m, date(2026, month, 1)) for month in (1, 4)] == [60, 60]


def test_from_alone_stops_where_a_bounded_target_starts_and_does_not_resume() -> None:
    m = _metric([{"from": "2025-01", "value": 40}, {"from": "2025-04", "to": "2025-06", "value": 60}])
    assert native_target(m, date(2025, 3, 1)) == 40
    assert native_target(m, date(2025, 4, 1)) == 60
    assert native_target(m, date(2025, 6, 1)) == 60
    assert native_target(m, date(2025, 7, 1)) is None


def test_to_is_inclusive() -> None:
    m = _metric([{"from": "2025-01", "to": "2025-03", "value": 40}])
    assert native_target(m, date(2025, 3, 1)) == 40
    assert native_target(m, date(2025, 4, 1)) is None


def test_an_open_weekly_target_is_prorated_into_later_months() -> None:
    m = _metric([{"from": "2026-01", "value": 700}], grain="week")
    assert target_for(m, date(2027, 2, 1), Grain.month, WeekStart.monday, True) == pytest.approx(2800)


def test_spans() -> None:
    targets = [Target.model_validate(t) for t in (
        {"from": "2025-01", "value": 1}, {"from": "2025-04", "to": "2025-Q2", "value": 2},
        {"from": "2026", "value": 3}, {"from": "2026-13", "value": 4})]
    assert target_spans(targets) == [
        (date(2025, 1, 1), date(2025, 4, 1)),
        (date(2025, 4, 1), date(2025, 7, 1)),
        (date(2026, 1, 1), None),
        None,  # not a period: validation reports it
    ]
