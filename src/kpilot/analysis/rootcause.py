"""Root cause of a change: how much each dimension value (and each pair of values) adds to it.

Pure functions over cells: the caller gives the metric per cell of the finest grain (one value of
every dimension) for two periods. Additive metrics (sums, counts) split exactly: a value's
contribution is its own change. Ratios of sums split into a rate effect (the segment's own ratio
moved) and a mix effect (the segment's share of the denominator moved), with the symmetric
(midpoint) shift-share decomposition, which is exact: for segment i with denominator share w and
ratio r, and R the total ratio,

    rate_i = (r1_i - r0_i) * (w0_i + w1_i) / 2
    mix_i  = (w1_i - w0_i) * ((r0_i + r1_i) / 2 - (R0 + R1) / 2)

and sum_i (rate_i + mix_i) = R1 - R0, because sum_i w0_i = sum_i w1_i = 1 (the centring term sums to
zero; it makes a segment growing at the average ratio carry no mix effect).

Beyond one dimension at a time, `causes` names the few combinations of dimension values, at any depth
(`segment=PME & channel=linkedin_ads`), whose cells moved together and explain the change: rootcause_search finds
them, rootcause_causes gives each its numbers (for ratios: rate and mix causes, through numerator and
denominator). `localize_additive` and `localize_ratio` give them alone.

Which periods are compared is decided here too (`periods_to_compare`, `comparison`): both at the grain of
the periods asked, whatever the metric's own grain, and a period in progress against the earlier one cut
after the same number of days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import combinations

from kpilot.analysis.rootcause_causes import Cause, Localization, additive_causes, ratio_causes, shift_share
from kpilot.model.errors import KpilotError, Message, msg
from kpilot.model.periods import Grain, WeekStart, label, next_start, parse_period, period_start

Key = tuple[str, ...]


@dataclass(frozen=True)
class Contribution:
    """The part of a change due to one value of one dimension, or one pair of values.

    `before`/`after` are the segment's metric: its sum for an additive metric, its own ratio for a
    ratio (None when the segment has no denominator in that period). For ratios, `weight_before` and
    `weight_after` are its shares of the denominator, and `mix + rate == change`.
    """

    dimensions: tuple[str, ...]
    values: tuple[str, ...]
    before: float | None
    after: float | None
    change: float
    share: float | None  # change / total change; None when the total did not change
    mix: float | None = None
    rate: float | None = None
    weight_before: float | None = None
    weight_after: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "dimensions": list(self.dimensions),
            "values": list(self.values),
            "before": _json(self.before),
            "after": _json(self.after),
            "change": _json(self.change),
            "share": _json(self.share),
            "mix": _json(self.mix),
            "rate": _json(self.rate),
            "weight_before": _json(self.weight_before),
            "weight_after": _json(self.weight_after),
        }


@dataclass(frozen=True)
class Comparison:
    """The two periods a change is measured between, and the days of each that are compared.

    `grain` is the periods' grain (the metric is recomputed at it from its rows); `metric_grain` the
    metric's own. `before_end`/`after_end` are the first days after what is compared: the periods' ends,
    or, when the later period is in progress, the same `days` into each period (the earlier one cut).
    """

    grain: Grain
    metric_grain: Grain
    before: date
    after: date
    before_end: date
    after_end: date
    before_label: str
    after_label: str
    days: int | None = None  # days compared in each period when the later one is in progress

    @property
    def regrained(self) -> bool:
        return self.grain is not self.metric_grain

    def to_dict(self) -> dict[str, object]:
        return {
            "grain": self.grain.value,
            "metric_grain": self.metric_grain.value,
            "before": {"period": self.before.isoformat(), "label": self.before_label,
                       "first": self.before.isoformat(), "last": (self.before_end - timedelta(days=1)).isoformat()},
            "after": {"period": self.after.isoformat(), "label": self.after_label,
                      "first": self.after.isoformat(), "last": (self.after_end - timedelta(days=1)).isoformat()},
            "same_days": self.days,
        }


@dataclass(frozen=True)
class Explanation:
    """A change between two periods, split by dimension value.

    `contributions` come per dimension (in the order given), then per pair of dimensions; within
    each, biggest |change| first. The contributions of one dimension (or one pair) sum to
    `total_change`, up to `residual`: 0 for cells that add up to the total, otherwise the part of
    the reported total that the cells do not explain (shown, never spread over the segments).
    `causes` are the combinations of dimension values (any depth) that moved it, biggest first; `explained` what
    they moved together, `noise` the typical relative move of the other cells (see rootcause_causes.Localization).
    """

    total_before: float
    total_after: float
    total_change: float
    kind: str  # 'additive' | 'ratio'
    contributions: tuple[Contribution, ...]
    residual: float
    compared: Comparison | None = None  # the periods compared, when the caller says (Insights.explain does)
    causes: tuple[Cause, ...] = ()
    explained: float | None = None
    noise: float | None = None

    def for_dimensions(self, *dimensions: str) -> tuple[Contribution, ...]:
        """The contributions of one dimension, or of one pair (dimensions in the order given to explain)."""
        return tuple(c for c in self.contributions if c.dimensions == tuple(dimensions))

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind,
            "total_before": _json(self.total_before),
            "total_after": _json(self.total_after),
            "total_change": _json(self.total_change),
            "residual": _json(self.residual),
            "contributions": [c.to_dict() for c in self.contributions],
            "causes": [c.to_dict() for c in self.causes],
            "explained": _json(self.explained),
            "noise": _json(self.noise),
        }
        if self.compared is not None:
            out["compared"] = self.compared.to_dict()
        return out


def _json(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _share(change: float, total: float) -> float | None:
    return change / total if total != 0 else None


def _period(which: str) -> Message:
    return msg("the period before") if which == "before" else msg("the period after")


def _check_cells(cells: Mapping[Key, object], dimensions: Sequence[str], which: str) -> None:
    period = _period(which)
    if not dimensions:
        raise KpilotError(msg("explain needs at least one dimension to split the change by"))
    if len(set(dimensions)) != len(dimensions):
        raise KpilotError(msg("a dimension is listed twice: {dimensions}", dimensions=", ".join(dimensions)))
    for key, value in cells.items():
        if len(key) != len(dimensions):
            raise KpilotError(msg(
                "{period} has a cell {key} with {n} value(s) for {m} dimension(s) ({dimensions}). "
                "Fix: give one value per dimension.", period=period, key=repr(key), n=len(key), m=len(dimensions),
                dimensions=", ".join(dimensions)))
        parts = value if isinstance(value, tuple) else (value,)
        for part in parts:
            if not isinstance(part, (int, float)) or not math.isfinite(part):
                raise KpilotError(msg(
                    "{period} has a value that is not a finite number in cell {key}: {value}",
                    period=period, key=repr(key), value=repr(value)))


def _groupings(dimensions: Sequence[str], pairs: bool) -> list[tuple[int, ...]]:
    """Positions of the dimension sets to split by: each dimension, then each pair."""
    out: list[tuple[int, ...]] = [(i,) for i in range(len(dimensions))]
    if pairs:
        out.extend(combinations(range(len(dimensions)), 2))
    return out


def _sum_by(cells: Mapping[Key, float], positions: tuple[int, ...]) -> dict[Key, list[float]]:
    groups: dict[Key, list[float]] = {}
    for key, value in cells.items():
        groups.setdefault(tuple(key[p] for p in positions), []).append(value)
    return groups


def _ordered(contribs: Iterable[Contribution]) -> list[Contribution]:
    return sorted(contribs, key=lambda c: (-abs(c.change), c.values))


def explain_additive(before: Mapping[Key, float], after: Mapping[Key, float], dimensions: Sequence[str], *,
                     pairs: bool = True, totals: tuple[float, float] | None = None) -> Explanation:
    """Split the change of an additive metric (sum, count) between two periods by dimension value.

    Keys are the values of all `dimensions` (the finest grain); a cell missing in one period counts
    0 there (it appeared or disappeared). `totals` are the metric's reported totals for the two
    periods when they come from elsewhere than the cells (a published total, a rounded source):
    the part of the change the cells do not explain is then `residual`.
    """
    _check_cells(before, dimensions, "before")
    _check_cells(after, dimensions, "after")
    cell_before, cell_after = math.fsum(before.values()), math.fsum(after.values())
    total_before, total_after = totals if totals is not None else (cell_before, cell_after)
    total_change = total_after - total_before
    contributions: list[Contribution] = []
    residual = 0.0
    for positions in _groupings(dimensions, pairs):
        b, a = _sum_by(before, positions), _sum_by(after, positions)
        block = []
        for values in dict.fromkeys([*b, *a]):
            v0, v1 = math.fsum(b.get(values, [])), math.fsum(a.get(values, []))
            block.append(Contribution(
                dimensions=tuple(dimensions[p] for p in positions), values=values, before=v0, after=v1,
                change=v1 - v0, share=_share(v1 - v0, total_change)))
        if len(positions) == 1:
            gap = total_change - math.fsum(c.change for c in block)
            residual = gap if abs(gap) > abs(residual) else residual
        contributions.extend(_ordered(block))
    found = additive_causes(before, after, dimensions)
    return Explanation(total_before=total_before, total_after=total_after, total_change=total_change,
                       kind="additive", contributions=tuple(contributions), residual=residual, causes=found.causes,
                       explained=found.explained, noise=found.noise)


def explain_ratio(before: Mapping[Key, tuple[float, float]], after: Mapping[Key, tuple[float, float]],
                  dimensions: Sequence[str], *, pairs: bool = True) -> Explanation:
    """Split the change of a ratio of sums (sum(num) / sum(den)) into per-segment mix and rate effects.

    Cells hold (numerator, denominator). The metric is the ratio of the sums over all cells, never a
    mean of the cells' ratios. A segment with no denominator in one period (it appeared or
    disappeared) has no rate there: its whole contribution is mix. Raises KpilotError when a period's
    total denominator is 0 (the ratio does not exist).
    """
    _check_cells(before, dimensions, "before")
    _check_cells(after, dimensions, "after")
    n0, d0 = math.fsum(v[0] for v in before.values()), math.fsum(v[1] for v in before.values())
    n1, d1 = math.fsum(v[0] for v in after.values()), math.fsum(v[1] for v in after.values())
    for period, den in (("before", d0), ("after", d1)):
        if den == 0:
            raise KpilotError(msg("the ratio's denominator is 0 in {period}: there is no ratio to explain",
                                  period=_period(period)))
    r_total0, r_total1 = n0 / d0, n1 / d1
    total_change = r_total1 - r_total0
    mean_total = (r_total0 + r_total1) / 2
    contributions: list[Contribution] = []
    residual = 0.0
    for positions in _groupings(dimensions, pairs):
        b = _sum_pairs(before, positions)
        a = _sum_pairs(after, positions)
        block = []
        for values in dict.fromkeys([*b, *a]):
            sn0, sd0 = b.get(values, (0.0, 0.0))
            sn1, sd1 = a.get(values, (0.0, 0.0))
            rate, mix, r0, r1 = shift_share(sn0, sd0, sn1, sd1, d0, d1, mean_total)
            change = mix + rate
            block.append(Contribution(
                dimensions=tuple(dimensions[p] for p in positions), values=values, before=r0, after=r1,
                change=change, share=_share(change, total_change), mix=mix, rate=rate, weight_before=sd0 / d0,
                weight_after=sd1 / d1))
        if len(positions) == 1:
            gap = total_change - math.fsum(c.change for c in block)
            residual = gap if abs(gap) > abs(residual) else residual
        contributions.extend(_ordered(block))
    found = ratio_causes(before, after, dimensions)
    return Explanation(total_before=r_total0, total_after=r_total1, total_change=total_change, kind="ratio",
                       contributions=tuple(contributions), residual=residual, causes=found.causes,
                       explained=found.explained, noise=found.noise)


def localize_additive(before: Mapping[Key, float], after: Mapping[Key, float], dimensions: Sequence[str]
                      ) -> Localization:
    """The causes of an additive metric's change alone (what explain_additive gives as `causes`, same defaults)."""
    _check_cells(before, dimensions, "before")
    _check_cells(after, dimensions, "after")
    return additive_causes(before, after, dimensions)


def localize_ratio(before: Mapping[Key, tuple[float, float]], after: Mapping[Key, tuple[float, float]],
                   dimensions: Sequence[str]) -> Localization:
    """The causes of a ratio's change alone (what explain_ratio gives as `causes`, same defaults)."""
    _check_cells(before, dimensions, "before")
    _check_cells(after, dimensions, "after")
    for period, cells in (("before", before), ("after", after)):
        if math.fsum(v[1] for v in cells.values()) == 0:
            raise KpilotError(msg("the ratio's denominator is 0 in {period}: there is no ratio to explain",
                                  period=_period(period)))
    return ratio_causes(before, after, dimensions)


def _sum_pairs(cells: Mapping[Key, tuple[float, float]], positions: tuple[int, ...]) -> dict[Key, tuple[float, float]]:
    nums: dict[Key, list[float]] = {}
    dens: dict[Key, list[float]] = {}
    for key, (num, den) in cells.items():
        k = tuple(key[p] for p in positions)
        nums.setdefault(k, []).append(num)
        dens.setdefault(k, []).append(den)
    return {k: (math.fsum(nums[k]), math.fsum(dens[k])) for k in nums}


# --- which periods are compared ---------------------------------------------------------------------

#: Days with data needed before concluding that rows are dated by weeks, months... (fewer prove nothing).
MIN_DATED_DAYS = 3


def _grain(grain: Grain) -> Message:
    return msg(grain.value)


def _reference(value: date | str, which: str) -> tuple[Grain, date]:
    if isinstance(value, date):
        return Grain.day, value
    try:
        return parse_period(value)
    except ValueError as exc:
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise KpilotError(msg("{period}: {reason}", period=_period(which), reason=reason)) from None


def periods_to_compare(before: date | str, after: date | str, metric_grain: Grain, grain: Grain | None = None,
                       week_start: WeekStart = WeekStart.monday) -> tuple[Grain, date, date]:
    """The grain and first days of the two periods a change is explained between.

    `before`/`after` are period references (2026, 2026-Q3, 2026-10, 2026-W45, 2026-10-15) or days. Named
    periods give the grain (both must name the same); a day stands for the period holding it, of `grain`,
    else of the other period's grain, else of the metric's own. `grain` must match the named periods.
    """
    refs = [(_reference(before, "before"), before), (_reference(after, "after"), after)]
    named = {g for (g, _), _ in refs if g is not Grain.day}
    for (g, start), text in refs:
        if grain is not None and g is not Grain.day and g is not grain:
            raise KpilotError(msg(
                "'{text}' is a period of grain {named}, not {grain}. Fix: write it as a {grain} (like {example}), "
                "or as a day (YYYY-MM-DD), which stands for the period of grain {grain} holding it.",
                text=str(text), named=_grain(g), grain=_grain(grain),
                example=label(period_start(start, grain, week_start), grain, week_start)))
    if grain is None and len(named) > 1:
        (g0, _), t0 = refs[0]
        (g1, _), t1 = refs[1]
        raise KpilotError(msg(
            "the periods to compare are not of the same grain: {before} ({before_grain}) and {after} "
            "({after_grain}). Fix: give two periods of the same kind (like 2026-10 and 2026-11).",
            before=str(t0), before_grain=_grain(g0), after=str(t1), after_grain=_grain(g1)))
    chosen = grain or (named.pop() if named else metric_grain)
    starts = [period_start(start, chosen, week_start) for (_, start), _ in refs]
    if starts[0] == starts[1]:
        raise KpilotError(msg("the two periods are the same ({period}): there is no change to explain. Fix: give "
                              "two different periods.", period=label(starts[0], chosen, week_start)))
    return chosen, starts[0], starts[1]


def comparison(metric: str, grain: Grain, before: date, after: date, *, as_of: date, through: date,
               metric_grain: Grain, week_start: WeekStart = WeekStart.monday) -> Comparison:
    """What of the two periods (first days, of `grain`) is compared, as of `as_of` with data through `through`.

    Complete periods are compared whole. When the later one holds the as-of date, both are compared over
    their first N days, N the days of it the data reaches (a month in progress against a whole month
    would read as a fall). Raises KpilotError for a period not started, or one holding no data yet.
    """
    labels = {p: label(p, grain, week_start) for p in (before, after)}
    for p in (before, after):
        if p > as_of:
            raise KpilotError(msg("{period} has not started as of {as_of}: there is nothing to compare yet. Fix: "
                                  "give periods up to the one holding {as_of}.", period=labels[p],
                                  as_of=as_of.isoformat()))
    ends = {p: next_start(p, grain) for p in (before, after)}
    later, earlier = max(before, after), min(before, after)
    days: int | None = None
    if as_of + timedelta(days=1) < ends[later]:  # the later period holds the as-of date: it is in progress
        days = (min(through, as_of) - later).days + 1
        if days <= 0:
            raise KpilotError(msg(
                "{period} holds no data of {metric} yet: its data runs through {through}. Fix: compare complete "
                "periods.", period=labels[later], metric=metric, through=through.isoformat()))
        ends[later] = later + timedelta(days=days)
        ends[earlier] = min(earlier + timedelta(days=days), ends[earlier])
    return Comparison(grain=grain, metric_grain=metric_grain, before=before, after=after, before_end=ends[before],
                      after_end=ends[after], before_label=labels[before], after_label=labels[after], days=days)


def data_grain(days: Iterable[date], week_start: WeekStart = WeekStart.monday) -> Grain:
    """The grain rows are dated by: the longest period whose first days hold every day with data.

    Monthly rows (each on the 1st) give month, rows on the first day of every week give week; rows on
    other days, or fewer than MIN_DATED_DAYS days with data, give day (nothing to conclude from).
    """
    found = set(days)
    if len(found) < MIN_DATED_DAYS:
        return Grain.day
    for grain in (Grain.year, Grain.quarter, Grain.month, Grain.week):
        if all(period_start(d, grain, week_start) == d for d in found):
            return grain
    return Grain.day


def check_data_grain(metric: str, grain: Grain, days: Iterable[date], week_start: WeekStart = WeekStart.monday
                     ) -> None:
    """Raise KpilotError when `grain` is finer than the grain the metric's rows are dated by."""
    dated = data_grain(days, week_start)
    if grain.order < dated.order:
        raise KpilotError(msg(
            "{metric} cannot be compared by {grain}: its rows are dated by {dated} (each on the first day of a "
            "period of that grain), so a period of grain {grain} would hold a whole {dated} of data or none. Fix: "
            "compare periods of grain {dated} or longer.", metric=metric, grain=_grain(grain), dated=_grain(dated)))
