"""Targets per period: which target applies to a period, at the metric's grain or another one."""

from __future__ import annotations

from datetime import date, timedelta

from kpilot.model.periods import Grain, WeekStart, next_start, period_range, period_start
from kpilot.model.workspace import Metric, Target


def _covering(metric: Metric, day: date) -> Target | None:
    for target in metric.targets:
        first, _ = period_range(target.from_)
        _, after = period_range(target.to if target.to is not None else target.from_)
        if first <= day < after:
            return target
    return None


def native_target(metric: Metric, period: date) -> float | None:
    """The target of a period of the metric's own grain: the target whose range holds its first day."""
    target = _covering(metric, period)
    return None if target is None else target.value


def target_for(metric: Metric, period: date, grain: Grain, week_start: WeekStart, additive: bool) -> float | None:
    """The target of a period of any grain.

    At the metric's grain, targets apply as written. At another grain, an additive metric's target is
    prorated by day (a weekly target of 700 is 100 a day), and needs a target on every day of the
    period; a non-additive metric (ratio, snapshot) takes the target of the metric's period holding
    the last day of the period.
    """
    if grain is metric.grain:
        return native_target(metric, period)
    end = next_start(period, grain)
    if not additive:
        last_day = end - timedelta(days=1)
        return native_target(metric, period_start(last_day, metric.grain, week_start))
    total = 0.0
    day = period
    while day < end:
        native = period_start(day, metric.grain, week_start)
        value = native_target(metric, native)
        if value is None:
            return None
        total += value / (next_start(native, metric.grain) - native).days
        day += timedelta(days=1)
    return total
