"""Targets per period: which target applies to a period, at the metric's grain or another one.

A target covers the periods from `from` to `to` inclusive; without `to`, it lasts until the next target
starts, or for ever when none follows (a plan written as `{from: 2026-01, value: 40}`, then
`{from: 2026-07, value: 50}` when it changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from functools import lru_cache

from kpilot.model.periods import Grain, WeekStart, next_start, period_range, period_start
from kpilot.model.workspace import Metric, Target

Span = tuple[date, date | None]  # [first day, first day after); None: no end


def target_spans(targets: Sequence[Target]) -> list[Span | None]:
    """The days each target covers, in the order given; None for a target whose `from` or `to` is not a
    period (validation reports it), and such a target does not end the one before it."""
    return list(_spans(tuple((t.from_, t.to) for t in targets)))


@lru_cache(maxsize=1024)
def _spans(bounds: tuple[tuple[object, object], ...]) -> tuple[Span | None, ...]:
    starts: list[date | None] = []
    for from_, _ in bounds:
        try:
            starts.append(period_range(from_)[0])
        except ValueError:
            starts.append(None)
    out: list[Span | None] = []
    for (_, to), first in zip(bounds, starts, strict=True):
        if first is None:
            out.append(None)
            continue
        if to is None:
            later = [s for s in starts if s is not None and s > first]
            out.append((first, min(later) if later else None))
            continue
        try:
            out.append((first, period_range(to)[1]))
        except ValueError:
            out.append(None)
    return tuple(out)


def _covering(metric: Metric, day: date) -> Target | None:
    for target, span in zip(metric.targets, target_spans(metric.targets), strict=True):
        if span is not None and span[0] <= day and (span[1] is None or day < span[1]):
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
