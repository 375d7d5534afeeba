"""Composition of metric series from aggregates: spines, ratios, offsets, running totals, formulas.

Pure functions over small arrays (one value per period). NaN stands for "no value" (null).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlglot import exp

from kpilot.model.periods import Grain, WeekStart, period_start

FloatArray = np.ndarray


@dataclass
class Series:
    """A metric's values per period of one grain, on a contiguous spine of periods."""

    grain: Grain
    periods: list[date]
    values: FloatArray
    numerator: FloatArray | None = None
    denominator: FloatArray | None = None
    additive: bool = False
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert len(self.periods) == len(self.values)

    def value_at(self, period: date) -> float | None:
        try:
            v = self.values[self.periods.index(period)]
        except ValueError:
            return None
        return None if np.isnan(v) else float(v)

    def reindex(self, periods: Sequence[date]) -> Series:
        return Series(self.grain, list(periods), reindex(self.periods, self.values, periods),
                      None if self.numerator is None else reindex(self.periods, self.numerator, periods),
                      None if self.denominator is None else reindex(self.periods, self.denominator, periods),
                      self.additive, dict(self.meta))

    def window(self, first: date | None, last: date | None) -> Series:
        keep = [i for i, p in enumerate(self.periods) if (first is None or p >= first) and (last is None or p <= last)]
        idx = np.array(keep, dtype=int)
        return Series(self.grain, [self.periods[i] for i in keep], self.values[idx],
                      None if self.numerator is None else self.numerator[idx],
                      None if self.denominator is None else self.denominator[idx], self.additive, dict(self.meta))


def reindex(periods: Sequence[date], values: FloatArray, target: Sequence[date]) -> FloatArray:
    pos = {p: i for i, p in enumerate(periods)}
    out = np.full(len(target), np.nan)
    for j, p in enumerate(target):
        i = pos.get(p)
        if i is not None:
            out[j] = values[i]
    return out


def fill(rows: Mapping[date, float | None], spine: Sequence[date], zero_when_missing: bool) -> FloatArray:
    """Values on the spine; periods without rows are 0 for sums and counts, null otherwise."""
    default = 0.0 if zero_when_missing else np.nan
    out = np.full(len(spine), default)
    for i, p in enumerate(spine):
        if p in rows:
            v = rows[p]
            out[i] = np.nan if v is None else float(v)
            if zero_when_missing and np.isnan(out[i]):
                out[i] = 0.0
    return out


def union_spine(spines: Sequence[Sequence[date]]) -> list[date]:
    """All periods covered by any of the spines (each is contiguous, so the union of ranges is too)."""
    found = sorted({p for s in spines for p in s})
    return found


def shift(values: FloatArray, offset: int) -> FloatArray:
    """Values `offset` periods away on a contiguous spine: offset -1 reads the previous period."""
    out = np.full(len(values), np.nan)
    if offset == 0:
        return values.copy()
    if offset < 0:
        k = -offset
        if k < len(values):
            out[k:] = values[:-k]
    else:
        if offset < len(values):
            out[:-offset] = values[offset:]
    return out


def divide(num: FloatArray, den: FloatArray) -> FloatArray:
    """A ratio of aggregates; a zero or missing denominator gives no value."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[(den == 0) | np.isnan(den) | np.isnan(num)] = np.nan
    return np.asarray(out, dtype=float)


def running(values: FloatArray, periods: Sequence[date], grain: Grain, *, window: int | None,
            to_date: Grain | None, week_start: WeekStart) -> FloatArray:
    """Running totals: over the last `window` periods, since the start of each `to_date` period, or all time."""
    clean = np.where(np.isnan(values), 0.0, values)
    if window:
        csum = np.concatenate([[0.0], np.cumsum(clean)])
        idx = np.arange(len(values))
        lo = np.maximum(idx + 1 - window, 0)
        out = csum[idx + 1] - csum[lo]
        out[idx + 1 < window] = np.nan  # an incomplete window is not a window total
        return np.asarray(out, dtype=float)
    if to_date:
        out = np.empty(len(values))
        total, current = 0.0, None
        for i, p in enumerate(periods):
            key = period_start(p, to_date, week_start)
            if key != current:
                total, current = 0.0, key
            total += clean[i]
            out[i] = total
        return out
    return np.cumsum(clean)


class FormulaError(ValueError):
    pass


def evaluate(tree: exp.Expr, columns: Mapping[str, FloatArray], length: int) -> FloatArray:
    """Evaluate a checked formula tree (see kpilot.model.expressions.parse_formula) over arrays."""

    def ev(node: exp.Expr) -> Any:
        if isinstance(node, exp.Paren):
            return ev(node.this)
        if isinstance(node, exp.Column):
            return columns[node.name]
        if isinstance(node, exp.Literal):
            if node.is_string:
                raise FormulaError(f"text '{node.this}' in a formula")
            return np.full(length, float(node.this))
        if isinstance(node, exp.Null):
            return np.full(length, np.nan)
        if isinstance(node, exp.Neg):
            return -ev(node.this)
        if isinstance(node, exp.Add):
            return ev(node.this) + ev(node.expression)
        if isinstance(node, exp.Sub):
            return ev(node.this) - ev(node.expression)
        if isinstance(node, exp.Mul):
            return ev(node.this) * ev(node.expression)
        if isinstance(node, exp.Div):
            return divide(ev(node.this), ev(node.expression))
        if isinstance(node, exp.Abs):
            return np.abs(ev(node.this))
        if isinstance(node, exp.Coalesce):
            out = ev(node.this).copy()
            for other in node.expressions:
                alt = ev(other)
                out = np.where(np.isnan(out), alt, out)
            return out
        if isinstance(node, exp.Nullif):
            a, b = ev(node.this), ev(node.expression)
            return np.where(a == b, np.nan, a)
        if isinstance(node, exp.Greatest | exp.Least):
            arrays = [ev(node.this), *[ev(e) for e in node.expressions]]
            stacked = np.vstack(arrays)
            with np.errstate(invalid="ignore"):
                res = np.max(stacked, axis=0) if isinstance(node, exp.Greatest) else np.min(stacked, axis=0)
            return np.where(np.isnan(stacked).any(axis=0), np.nan, res)
        if isinstance(node, exp.Round):
            digits = int(node.args["decimals"].this) if node.args.get("decimals") is not None else 0
            return np.round(ev(node.this), digits)
        raise FormulaError(f"'{node.sql()}' cannot be evaluated in a formula")

    with np.errstate(invalid="ignore", over="ignore"):
        result = ev(tree)
    return np.asarray(result, dtype=float)
