"""One verdict per KPI and period: on track, at risk, off track, or no data; and whether its data is fresh.

Pure functions. Every door (CLI, pages, API, e-mail) shows the verdict computed here, never its own reading of
a status: the red/amber/green of the period at pace, raised to at least "at risk" by a firing decision rule,
and "no data" when there is nothing honest to judge (no value, no target, or data that stopped arriving).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from itertools import pairwise

# A day of normal arrival holds at least this share of the usual rows per day (rows dated ahead, such as
# meetings booked for next month, trickle in at a fraction of the usual rate and do not count).
NORMAL_DAY_SHARE = 0.25
USUAL_WEEKS = 26  # weeks of history the usual weekly volume is read from
USUAL_QUANTILE = 0.75  # robust to a few empty weeks: the very ones a stopped source leaves
MIN_STALE_DAYS = 7  # no source is stale before a week without its usual rows
GAP_QUANTILE = 0.95


class Verdict(StrEnum):
    on_track = "on_track"
    at_risk = "at_risk"
    off_track = "off_track"
    no_data = "no_data"


# Why a KPI has no verdict: no value in its current period, no target for it, or data that stopped arriving.
NO_VALUE, NO_TARGET, STALE = "no_value", "no_target", "stale"
_FROM_STATUS = {"green": Verdict.on_track, "amber": Verdict.at_risk, "red": Verdict.off_track}
_RANK = {Verdict.no_data: 0, Verdict.on_track: 1, Verdict.at_risk: 2, Verdict.off_track: 3}


@dataclass(frozen=True)
class Freshness:
    """When a metric's data last arrived as usual, and whether it has stopped."""

    data_through: date | None  # the last day with the usual volume of rows (None: no row at all)
    stale: bool
    allowed_days: int  # how many days without the usual rows are normal for this source

    def days_late(self, as_of: date) -> int | None:
        if self.data_through is None:
            return None
        return max(0, (as_of - self.data_through).days - self.allowed_days)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def freshness(daily_rows: Sequence[tuple[date, float]], as_of: date) -> Freshness:
    """Whether rows still arrive at their usual rate, from the rows per day (dated by the metric's time column).

    The usual weekly volume is a high quantile of the weekly row counts of the last 26 weeks; a day is a day of
    normal arrival when it holds a quarter of the usual daily rows (so a few rows dated ahead, like meetings
    booked for later, do not make a stopped source look alive). The data is stale when the days since the last
    normal day exceed what the source's own gaps allow (weekends, monthly batches), and at least a week.
    """
    days = {d: float(v) for d, v in daily_rows if d <= as_of and v and v > 0 and math.isfinite(v)}
    if not days:
        return Freshness(None, False, MIN_STALE_DAYS)
    first = min(days)
    weeks: list[float] = []
    for k in range(USUAL_WEEKS):
        end = as_of - timedelta(days=7 * k)
        start = end - timedelta(days=6)
        if start < first:
            break
        weeks.append(sum(days.get(start + timedelta(days=i), 0.0) for i in range(7)))
    usual = _quantile(weeks, USUAL_QUANTILE)
    floor = max(1.0, NORMAL_DAY_SHARE * usual / 7)
    normal = sorted(d for d, v in days.items() if v >= floor) or sorted(days)
    through = normal[-1]
    recent = [d for d in normal if d >= through - timedelta(days=7 * USUAL_WEEKS)]
    gaps = [float((b - a).days) for a, b in pairwise(recent)]
    allowed = max(MIN_STALE_DAYS, math.ceil(2 * _quantile(gaps, GAP_QUANTILE))) if gaps else MIN_STALE_DAYS
    return Freshness(through, (as_of - through).days > allowed, allowed)


def stalest(found: Sequence[Freshness]) -> Freshness:
    """One freshness for data read from several tables or columns: stale when any of them stopped (then as
    fresh as the earliest that stopped), else the least recent."""
    known = [f for f in found if f.data_through is not None]
    if not known:
        return Freshness(None, False, MIN_STALE_DAYS)
    stopped = [f for f in known if f.stale]
    pool = stopped or known
    return min(pool, key=lambda f: f.data_through or date.max)


def verdict_of(status: str, *, fires: bool, stale: bool, has_value: bool, has_target: bool
               ) -> tuple[Verdict, str | None]:
    """The verdict and, for `no_data`, why (stale, no_value, no_target).

    Stale data is never judged: a source that stopped is not a collapse. A firing decision rule makes the
    verdict at least at risk, whatever the status of the period in progress.
    """
    if stale:
        return Verdict.no_data, STALE
    verdict = _FROM_STATUS.get(status, Verdict.no_data)
    reason = None
    if verdict is Verdict.no_data:
        reason = NO_VALUE if not has_value else NO_TARGET if not has_target else NO_VALUE
    if fires and _RANK[verdict] < _RANK[Verdict.at_risk]:
        return Verdict.at_risk, None
    return verdict, reason


def period_to_date(daily: Sequence[tuple[date, float]], start: date, days: int) -> float | None:
    """The sum of the first `days` days of the period starting at `start` (None when no day is covered)."""
    end = start + timedelta(days=days)
    picked = [v for d, v in daily if start <= d < end and math.isfinite(v)]
    return sum(picked) if picked else None


__all__ = ["NO_TARGET", "NO_VALUE", "STALE", "Freshness", "Verdict", "freshness", "period_to_date", "stalest",
           "verdict_of"]
