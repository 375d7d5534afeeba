"""A metric's periods and its breakdown as rows for people and JSON: values, targets, statuses, and a ratio's parts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from kpilot.analysis.status import judge_series, linear_pacing, pace
from kpilot.compute.compose import Series
from kpilot.compute.metrics import MetricComputer
from kpilot.insights import Insights
from kpilot.insights.board import daily_values
from kpilot.model.periods import Grain, label, next_start, period_start
from kpilot.model.targets import target_for


def series_rows(ins: Insights, key: str, grain: Grain, first: date | None, last: date | None
                ) -> list[dict[str, object]]:
    """Every period of a metric at `grain` between `first` and `last`: start, label, value, target, status (the
    current one paced, as the board judges it) and whether it is complete."""
    mc, ws = ins.mc, ins.ws
    metric = ws.metric(key)
    s: Series = mc.series(key, grain)
    additive = mc.is_additive(key)
    through = ins.through(key, grain)
    current = period_start(mc.as_of, grain, ws.week_start)
    if grain is metric.grain:
        _, share, _ = pace(metric, current, through, additive=additive, daily=daily_values(mc, key, through),
                           week_start=ws.week_start)
    else:
        share = linear_pacing(current, grain, through).share if additive else 1.0
    values = [number(v) for v in s.values]
    judged = {j.period: j for j in judge_series(metric, s.periods, values, grain, current=current, share=share,
                                                additive=additive, week_start=ws.week_start)}
    rows: list[dict[str, object]] = []
    for i, p in enumerate(s.periods):
        if (first and next_start(p, grain) <= first) or (last and p > last):
            continue
        j = judged.get(p)
        row: dict[str, object] = {
            "period": p.isoformat(), "label": label(p, grain, ws.week_start), "value": values[i],
            "target": target_for(metric, p, grain, ws.week_start, additive),
            "status": j.status if j else "none",
            "complete": next_start(p, grain) <= mc.as_of + timedelta(days=1),
        }
        _add_parts(row, s, i)
        rows.append(row)
    return rows


def breakdown_rows(mc: MetricComputer, key: str, dims: Sequence[str], grain: Grain, first: date | None,
                   last: date | None) -> list[dict[str, object]]:
    """A metric per period and per value of the given dimensions, in period then dimension order."""
    week_start = mc.ws.week_start
    rows: list[dict[str, object]] = []
    for values, s in mc.breakdown(key, dims, grain).items():
        for i, p in enumerate(s.periods):
            if (first and next_start(p, grain) <= first) or (last and p > last):
                continue
            row: dict[str, object] = {"period": p.isoformat(), "label": label(p, grain, week_start)}
            for d, x in zip(dims, values, strict=True):
                row[d] = x.isoformat() if isinstance(x, date) else x
            row["value"] = number(s.values[i])
            _add_parts(row, s, i)
            rows.append(row)
    rows.sort(key=lambda r: (str(r["period"]), *[str(r[d]) for d in dims]))
    return rows


def number(v: float) -> float | None:
    """A computed value for people and JSON: NaN (no value) becomes None."""
    return None if v != v else float(v)


def _add_parts(row: dict[str, object], s: Series, i: int) -> None:
    """A ratio's numerator and denominator beside its value."""
    if s.numerator is not None and s.denominator is not None:
        row["numerator"] = number(s.numerator[i])
        row["denominator"] = number(s.denominator[i])


__all__ = ["breakdown_rows", "number", "series_rows"]
