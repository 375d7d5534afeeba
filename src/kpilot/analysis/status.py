"""Judging a metric against its target: pacing, red/amber/green, change, and decision rules.

Pure functions over a metric's series. The current period is judged on what was expected by now
(pacing): on day 10 of 30, a monthly target of a sum or a count is judged on its expected share so
far — linear by default, or the share the same point of past periods held (seasonal profile).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from kpilot.analysis.verdict import Freshness, Verdict, period_to_date, verdict_of
from kpilot.model.periods import Grain, WeekStart, label, next_start, period_start
from kpilot.model.targets import target_for
from kpilot.model.workspace import Bands, DecisionRule, Direction, Metric, When

# Before this share of a period has elapsed, a decision rule looks at complete periods only: a
# Monday-morning week is too young to trigger a decision.
MIN_ELAPSED_FOR_RULES = 0.25
SEASONAL_MIN_PERIODS = 4
SEASONAL_MAX_PERIODS = 12


@dataclass(frozen=True)
class Pacing:
    """How much of a period's target is expected by now."""

    share: float  # expected share of the period's total reached by now (1.0 for a complete period)
    elapsed: float  # share of the period's days elapsed
    method: str  # "complete" | "linear" | "seasonal" | "level" (non-additive: judged on the full target)


@dataclass(frozen=True)
class PeriodJudgement:
    period: date
    value: float | None
    target: float | None
    expected: float | None  # target x pacing share
    achievement: float | None  # value vs expected, oriented so that >= 1 is good
    status: str  # green | amber | red | none
    complete: bool


@dataclass(frozen=True)
class RuleResult:
    """A decision rule checked now: whether it fires, and the evidence: the periods it looked at (with their
    values, targets and statuses) and, for a forecast condition, the projection it compared."""

    fires: bool
    evaluated: bool
    reasons: list[str] = field(default_factory=list)
    window: tuple[PeriodJudgement, ...] = ()
    projected: float | None = None


def _finite(x: float | None) -> bool:
    return x is not None and not math.isnan(x) and not math.isinf(x)


def achievement(value: float | None, expected: float | None, direction: Direction) -> float | None:
    """Value against expected, as a share where >= 1 means on target whatever the direction."""
    if not _finite(value) or not _finite(expected):
        return None
    assert value is not None and expected is not None
    if direction is Direction.up:
        if expected == 0:
            return math.inf if value >= 0 else -math.inf
        return value / expected if expected > 0 else (2 - value / expected)
    if value == 0:
        return math.inf if expected >= 0 else -math.inf
    if expected == 0:
        return -math.inf
    return expected / value if value > 0 else -math.inf


def rag(ach: float | None, bands: Bands) -> str:
    if ach is None or math.isnan(ach):
        return "none"
    if ach >= bands.green:
        return "green"
    if ach >= bands.amber:
        return "amber"
    return "red"


def linear_pacing(period: date, grain: Grain, through: date) -> Pacing:
    """Share of the period's days elapsed up to and including `through`."""
    end = next_start(period, grain)
    days = (end - period).days
    if through >= end:
        return Pacing(1.0, 1.0, "complete")
    elapsed = max(0, (through - period).days + 1) / days
    return Pacing(elapsed, elapsed, "linear")


def seasonal_pacing(period: date, grain: Grain, through: date, daily: Sequence[tuple[date, float]],
                    week_start: WeekStart) -> Pacing:
    """Expected share by now from the same point of past complete periods (ratio of sums).

    Uses up to 12 past periods with a positive total; falls back to linear with fewer than 4.
    """
    base = linear_pacing(period, grain, through)
    if base.method == "complete":
        return base
    elapsed_days = (through - period).days + 1
    by_period: dict[date, list[tuple[int, float]]] = {}
    for day, value in daily:
        if not _finite(value):
            continue
        p = period_start(day, grain, week_start)
        if p >= period:
            continue
        by_period.setdefault(p, []).append(((day - p).days, value))
    partial_sum = total_sum = 0.0
    used = 0
    for p in sorted(by_period, reverse=True)[: SEASONAL_MAX_PERIODS + 1]:
        if used >= SEASONAL_MAX_PERIODS:
            break
        days = by_period[p]
        # A past period only counts if its whole span is covered by the daily history.
        if (next_start(p, grain) - p).days != len(days):
            continue
        total = sum(v for _, v in days)
        if total <= 0:
            continue
        partial_sum += sum(v for off, v in days if off < elapsed_days)
        total_sum += total
        used += 1
    if used < SEASONAL_MIN_PERIODS or total_sum <= 0:
        return base
    return Pacing(partial_sum / total_sum, base.elapsed, "seasonal")


def judge(value: float | None, target: float | None, share: float, metric: Metric, period: date,
          complete: bool) -> PeriodJudgement:
    if share <= 0:
        # Nothing of the period is in the data yet: it cannot be judged.
        return PeriodJudgement(period, value, target, None, None, "none", complete)
    expected = None if target is None else target * share
    ach = achievement(value, expected, metric.direction)
    status = rag(ach, metric.bands) if target is not None else "none"
    return PeriodJudgement(period, value, target, expected, ach, status, complete)


def change(current: float | None, previous: float | None, share: float = 1.0) -> float | None:
    """Relative change against the previous period; a partial period is compared at its pace."""
    if not _finite(current) or not _finite(previous) or previous == 0 or share <= 0:
        return None
    assert current is not None and previous is not None
    return (current / share) / previous - 1 if previous > 0 else None


def _pct(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x * 100:.0f} %"


def describe_when(when: When, direction: Direction, tr: Callable[[str], str] = str,
                  pct: Callable[[float], str] | None = None) -> str:
    """The rule's condition in words; `tr` translates the templates, `pct` formats shares."""
    fmt = pct or _pct
    parts: list[str] = []
    n = when.periods
    span = tr(" for {n} periods").format(n=n) if n > 1 else ""
    if when.status:
        # What the status means, never a colour's name ("off track for 2 periods").
        said = {"red": tr("off track"), "amber": tr("at risk"), "green": tr("on track"),
                "not_green": tr("not on track")}.get(when.status, when.status.replace("_", " "))
        parts.append(said + span)
    if when.below_target is not None:
        parts.append(tr("value below {share} of target").format(share=fmt(when.below_target)) + span)
    if when.above_target is not None:
        parts.append(tr("value above {share} of target").format(share=fmt(when.above_target)) + span)
    if when.forecast:
        parts.append(tr("the period-end forecast misses the target") if when.forecast == "miss"
                     else tr("the period-end forecast hits the target"))
    if when.trend:
        if n > 1:
            parts.append((tr("falling for {n} periods in a row") if when.trend == "down"
                          else tr("rising for {n} periods in a row")).format(n=n))
        else:
            parts.append(tr("falling") if when.trend == "down" else tr("rising"))
    if when.change_below is not None:
        parts.append(tr("change vs previous period below {share}").format(share=fmt(when.change_below)) + span)
    if when.change_above is not None:
        parts.append(tr("change vs previous period above {share}").format(share=fmt(when.change_above)) + span)
    return tr(" and ").join(parts)


def evaluate_rule(rule: DecisionRule, history: Sequence[PeriodJudgement], paced_values: Sequence[float | None],
                  projected: float | None, metric: Metric, grain: Grain, week_start: WeekStart,
                  current_elapsed: float) -> RuleResult:
    """Whether a decision rule's condition holds now.

    `history` is the judged periods up to the current one (last item); `paced_values` the values with
    the current period scaled to its pace (for trends and changes); `projected` the period-end
    projection of the current period.
    """
    when = rule.when
    n = when.periods
    judged = list(history)
    paced = list(paced_values)
    if judged and not judged[-1].complete and current_elapsed < MIN_ELAPSED_FOR_RULES:
        judged, paced = judged[:-1], paced[:-1]
    if len(judged) < n:
        return RuleResult(False, False, [f"needs {n} periods of history, has {len(judged)}"])
    window = judged[-n:]
    # The evidence: the periods the condition read (one more for a change), the current one for a forecast.
    shown = judged[-(n + 1):] if when.trend or when.change_below is not None or when.change_above is not None \
        else window
    if when.forecast and history and history[-1] not in shown:
        shown = [*shown, history[-1]]
    reasons: list[str] = []
    ok = True

    def lbl(p: date) -> str:
        return label(p, grain, week_start)

    if when.status:
        want = when.status
        hits = [j.status == want if want != "not_green" else j.status in ("amber", "red") for j in window]
        ok &= all(hits)
        reasons.append("status " + ", ".join(f"{lbl(j.period)} {j.status}" for j in window))
    for share, below in ((when.below_target, True), (when.above_target, False)):
        if share is None:
            continue
        checks = []
        for j in window:
            if j.value is None or j.expected is None or math.isnan(j.value):
                checks.append(False)
                continue
            checks.append(j.value < share * j.expected if below else j.value > share * j.expected)
        ok &= all(checks)
        reasons.append(f"value vs {'expected so far' if not window[-1].complete else 'target'}: " + ", ".join(
            f"{lbl(j.period)} {_pct(j.value / j.expected) if j.value is not None and j.expected else 'n/a'}"
            for j in window))
    if when.forecast:
        current = history[-1]
        if projected is None or current.target is None:
            ok = False
            reasons.append("no forecast available")
        else:
            ach = achievement(projected, current.target, metric.direction)
            hit = ach is not None and ach >= metric.bands.green
            ok &= hit if when.forecast == "hit" else not hit
            reasons.append(f"projected {projected:,.4g} at period end vs target {current.target:,.4g} "
                           f"({_pct(ach)} of target)")
    if when.trend or when.change_below is not None or when.change_above is not None:
        values = paced[-(n + 1):]
        changes = [change(values[i + 1], values[i]) for i in range(len(values) - 1)] if len(values) == n + 1 else []
        if len(changes) < n or any(c is None for c in changes):
            ok = False
            reasons.append(f"needs {n + 1} periods with values to measure a change")
        else:
            cs = [c for c in changes if c is not None]
            if when.trend:
                ok &= all(c < 0 for c in cs) if when.trend == "down" else all(c > 0 for c in cs)
            if when.change_below is not None:
                ok &= all(c < when.change_below for c in cs)
            if when.change_above is not None:
                ok &= all(c > when.change_above for c in cs)
            reasons.append("change " + ", ".join(f"{c * 100:+.0f} %" for c in cs))
    return RuleResult(bool(ok), True, reasons, tuple(shown), projected if when.forecast else None)


def pace(metric: Metric, current: date, through: date, *, additive: bool,
         daily: Sequence[tuple[date, float]] | None, week_start: WeekStart) -> tuple[Pacing, float, str]:
    """The pacing of the current period: (pacing, share the period is judged on, method).

    Sums and counts are judged on the share expected by now (seasonal when `daily` history allows,
    else linear); levels (ratios, snapshots, formulas) on their full target.
    """
    pacing = linear_pacing(current, metric.grain, through)
    if additive and pacing.method != "complete" and metric.pacing in ("auto", "seasonal") and daily is not None:
        pacing = seasonal_pacing(current, metric.grain, through, daily, week_start)
    if metric.pacing == "none" or not additive:
        return pacing, 1.0, ("complete" if pacing.method == "complete" else "level")
    return pacing, pacing.share, pacing.method


def judge_series(metric: Metric, periods: Sequence[date], values: Sequence[float | None], grain: Grain, *,
                 current: date, share: float, additive: bool, week_start: WeekStart,
                 current_complete: bool = False) -> list[PeriodJudgement]:
    """Every period up to the current one against its target; the current one at `share` of it."""
    out: list[PeriodJudgement] = []
    for p, value in zip(periods, values, strict=True):
        if p > current:
            break
        target = target_for(metric, p, grain, week_start, additive)
        is_current = p == current
        out.append(judge(value, target, share if is_current else 1.0, metric, p,
                         complete=not is_current or current_complete))
    return out


@dataclass(frozen=True)
class Assessment:
    """A metric judged at its current period: what a board tile shows, and why."""

    history: list[PeriodJudgement]
    pacing: Pacing
    share: float  # the share of the target the current period is judged on
    method: str
    projected: float | None
    change: float | None
    previous: float | None  # what the change compares with: the previous period, cut at the same point if need be
    previous_to_date: bool  # the previous period was cut at the same point as the one in progress
    rule: RuleResult | None
    verdict: Verdict
    verdict_reason: str | None
    fresh: Freshness

    @property
    def current(self) -> PeriodJudgement | None:
        return self.history[-1] if self.history else None

    @property
    def pace_ratio(self) -> float | None:
        """Value against what was expected by now (1.0 = exactly on pace)."""
        now = self.current
        if now is None or now.value is None or not now.expected:
            return None
        return now.value / now.expected


def assess(metric: Metric, periods: Sequence[date], values: Sequence[float | None], *, current: date,
           through: date, additive: bool, week_start: WeekStart, projected: float | None, fresh: Freshness,
           daily: Sequence[tuple[date, float]] | None = None) -> Assessment:
    """Judge a metric's current period: status at pace, change, decision rule, and the one verdict.

    `periods`/`values` are the metric's series at its grain; `through` the last day its data reaches;
    `projected` the forecast's point for the current period (None where none can be made); `fresh` whether
    its data still arrives; `daily` its daily values when it is a flow (seasonal pacing, and the previous
    period cut at the same point for the change).
    """
    pacing, share, method = pace(metric, current, through, additive=additive, daily=daily, week_start=week_start)
    history = judge_series(metric, periods, values, metric.grain, current=current, share=share,
                           additive=additive, week_start=week_start, current_complete=method == "complete")
    # Values with the current period scaled to a whole period, for trends and changes.
    paced: list[float | None] = []
    for j in history:
        s = share if j.period == current else 1.0
        paced.append(j.value if not additive or j.value is None else (j.value / s if s > 0 else None))
    now = history[-1] if history else None
    value = now.value if now else None
    previous = history[-2].value if len(history) >= 2 else None
    to_date = False
    if additive and now is not None and not now.complete and daily is not None and len(history) >= 2:
        # A flow's period in progress against the same point of the previous one, never a complete period.
        elapsed = (through - current).days + 1
        previous = period_to_date(daily, history[-2].period, elapsed) if elapsed > 0 else None
        to_date = True
    chg = change(value, previous, 1.0 if to_date or not additive else share)
    rule = None
    if metric.decision is not None and fresh.stale:
        # Data that stopped arriving reads as a collapse: no decision is taken on it.
        rule = RuleResult(False, False, ["data stopped arriving"])
    elif metric.decision is not None:
        rule = evaluate_rule(metric.decision, history, paced, projected, metric, metric.grain, week_start,
                             pacing.elapsed)
    verdict, reason = verdict_of(now.status if now else "none", fires=bool(rule and rule.fires), stale=fresh.stale,
                                 has_value=value is not None and not math.isnan(value),
                                 has_target=now is not None and now.target is not None)
    return Assessment(history, pacing, share, method, projected, chg, previous, to_date, rule, verdict, reason,
                      fresh)
