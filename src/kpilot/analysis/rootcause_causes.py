"""The causes of a change in people's terms: which combinations of dimension values moved a metric, and by how much.

Cells come as rootcause.py takes them (one value of every dimension -> the metric's sum, or its numerator and
denominator for a ratio); rootcause_search finds the combinations; this module gives each its numbers.

* Additive metrics (sums, counts): the cells' own values are compared.
* Ratios (sum of a numerator over sum of a denominator), through both parts. A **rate** cause is a combination
  whose own ratio moved: its cells' numerators are compared with what they would have been at their earlier
  ratio with their later denominator (so a segment that only grew is not a rate cause). A **mix** cause is one
  whose share of the denominator moved (denominators compared with the same growth for all) in a way that moved
  the total ratio: more weight on a segment below the average ratio lowers it. Each cause carries the exact
  shift-share split of its own segment (rate and mix effects, as rootcause.explain_ratio gives them), and is kept
  only when the effect it was found for goes the way the total ratio moved (for a mix cause: by MIX_SHARE of the
  change at least).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kpilot.analysis.rootcause_search import Found, search

#: A mix cause (a segment whose weight moved) must account for this share of the ratio's change at least: a
#: segment's weight can move a lot and the ratio not at all (its own ratio is the average).
MIX_SHARE = 0.05

Key = tuple[str, ...]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Cause:
    """A combination of dimension values (one dimension or several) whose cells moved together.

    `before`/`after` are its sum (additive) or its own ratio (None without denominator in that period); `change` is
    its part of the total change (additive: after - before; ratio: rate + mix, its effect on the total ratio) and
    `share` that part over the total change. `cells`: the cells (combinations of every dimension) with data under
    it. `evidence`: by how much it passed the bar (log-likelihood ratio over noise minus the bar, natural log).
    `effect`: "level" (additive), "rate" or "mix" (ratio: what of the segment moved).
    """

    dimensions: tuple[str, ...]
    values: tuple[str, ...]
    before: float | None
    after: float | None
    change: float
    share: float | None
    cells: int
    evidence: float
    effect: str = "level"
    mix: float | None = None
    rate: float | None = None
    weight_before: float | None = None
    weight_after: float | None = None

    @property
    def element(self) -> str:
        """The combination as `dimension=value&dimension=value`, dimensions in the order given to explain."""
        return "&".join(f"{d}={v}" for d, v in zip(self.dimensions, self.values, strict=True))

    def to_dict(self) -> dict[str, object]:
        return {"element": self.element, "dimensions": list(self.dimensions), "values": list(self.values),
                "before": _json(self.before), "after": _json(self.after), "change": _json(self.change),
                "share": _json(self.share), "cells": self.cells, "evidence": _json(self.evidence),
                "effect": self.effect, "mix": _json(self.mix), "rate": _json(self.rate),
                "weight_before": _json(self.weight_before), "weight_after": _json(self.weight_after)}


@dataclass(frozen=True)
class Localization:
    """The causes of a change, biggest |change| first; what they explain together; the noise of the other cells.

    `explained`: the change of all the causes' cells taken together (cells under two causes counted once), in the
    metric's terms (for a ratio: the effect on the total ratio of that group of cells). `noise`: the typical
    relative move of a cell that is not under a cause (e.g. 0.05: about 5 % either way). Both None when nothing
    moved.
    """

    causes: tuple[Cause, ...] = ()
    explained: float | None = None
    noise: float | None = None


def _json(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _share(change: float, total: float) -> float | None:
    return change / total if total != 0 else None


def shift_share(sn0: float, sd0: float, sn1: float, sd1: float, d0: float, d1: float, mean_total: float
                ) -> tuple[float, float, float | None, float | None]:
    """A segment's (rate, mix) effects on a ratio of sums, and its own ratios before and after (see rootcause.py)."""
    w0, w1 = sd0 / d0, sd1 / d1
    r0 = sn0 / sd0 if sd0 != 0 else None
    r1 = sn1 / sd1 if sd1 != 0 else None
    if r0 is not None and r1 is not None:
        return (r1 - r0) * (w0 + w1) / 2, (w1 - w0) * ((r0 + r1) / 2 - mean_total), r0, r1
    # No rate in one period: the segment's whole move (its part n/D of the ratio, centred like the other
    # segments) is mix. Numerators without denominator land here too.
    return 0.0, (sn1 / d1 - sn0 / d0) - (w1 - w0) * mean_total, r0, r1


class _Cells:
    """The cells of both periods as arrays: dimension codes, and each period's value columns (missing = 0)."""

    def __init__(self, before: Mapping[Key, object], after: Mapping[Key, object], dimensions: Sequence[str],
                 width: int) -> None:
        self.keys: list[Key] = list(dict.fromkeys([*before, *after]))
        self.dimensions = tuple(dimensions)
        columns = list(zip(*self.keys, strict=True)) if self.keys else [() for _ in dimensions]
        self.codes = np.zeros((len(self.keys), len(dimensions)), dtype=np.int64)
        for p, column in enumerate(columns):
            index = {v: i for i, v in enumerate(dict.fromkeys(column))}
            self.codes[:, p] = np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=len(column))
        self.before = self._columns(before, width)
        self.after = self._columns(after, width)

    def _columns(self, cells: Mapping[Key, object], width: int) -> Floats:
        if width == 1:
            flat: Floats = np.fromiter((cells.get(k, 0.0) for k in self.keys), dtype=np.float64, count=len(self.keys))
            return flat.reshape(-1, 1)
        out: Floats = np.array([cells.get(k, (0.0,) * width) for k in self.keys], dtype=np.float64)
        return out.reshape(len(self.keys), width)

    def element(self, found: Found) -> tuple[tuple[str, ...], tuple[str, ...]]:
        key = self.keys[found.cell]
        return (tuple(self.dimensions[p] for p in found.positions), tuple(str(key[p]) for p in found.positions))


def _ordered(causes: list[Cause]) -> tuple[Cause, ...]:
    return tuple(sorted(causes, key=lambda c: (-abs(c.change), c.dimensions, c.values)))


def additive_causes(before: Mapping[Key, float], after: Mapping[Key, float], dimensions: Sequence[str]
                    ) -> Localization:
    """The causes of the change of a sum between two periods (cells: one value of every dimension -> the sum)."""
    cells = _Cells(before, after, dimensions, 1)
    b, a = cells.before[:, 0], cells.after[:, 0]
    total = math.fsum(a) - math.fsum(b)
    found = search(cells.codes, b, a)
    if not found.found:
        return Localization((), None if found.direction == 0 else 0.0, _json(found.noise))
    causes = []
    for f in found.found:
        dims, values = cells.element(f)
        v0, v1 = math.fsum(b[f.cells]), math.fsum(a[f.cells])
        with_data = int(np.count_nonzero((b[f.cells] != 0) | (a[f.cells] != 0)))
        causes.append(Cause(dims, values, v0, v1, v1 - v0, _share(v1 - v0, total), with_data, f.evidence))
    union = np.unique(np.concatenate([f.cells for f in found.found]))
    return Localization(_ordered(causes), math.fsum(a[union]) - math.fsum(b[union]), found.noise)


def ratio_causes(before: Mapping[Key, tuple[float, float]], after: Mapping[Key, tuple[float, float]],
                 dimensions: Sequence[str]) -> Localization:
    """The causes of the change of a ratio of sums (cells -> (numerator, denominator)); rate and mix causes.

    Both periods' total denominators must not be 0 (rootcause.explain_ratio checks it).
    """
    cells = _Cells(before, after, dimensions, 2)
    n0, d0 = cells.before[:, 0], cells.before[:, 1]
    n1, d1 = cells.after[:, 0], cells.after[:, 1]
    big_n0, big_d0, big_n1, big_d1 = (math.fsum(c) for c in (n0, d0, n1, d1))
    r_total0, r_total1 = big_n0 / big_d0, big_n1 / big_d1
    total = r_total1 - r_total0
    if total == 0:
        return Localization()
    way = 1 if total > 0 else -1
    mean_total = (r_total0 + r_total1) / 2
    has_rate = (d0 != 0) & (d1 != 0)
    expected = np.where(has_rate, d1 * n0 / np.where(has_rate, d0, 1.0), 0.0)
    rate_search = search(cells.codes, expected, np.where(has_rate, n1, 0.0), direction=way)
    grown = d0 * (big_d1 / big_d0)
    searches = [("rate", rate_search), ("mix", search(cells.codes, grown, d1, direction=1)),
                ("mix", search(cells.codes, grown, d1, direction=-1))]

    def effects(index: npt.NDArray[np.intp]) -> tuple[float, float, float | None, float | None, float, float]:
        sn0, sd0, sn1, sd1 = (math.fsum(c[index]) for c in (n0, d0, n1, d1))
        rate, mix, own0, own1 = shift_share(sn0, sd0, sn1, sd1, big_d0, big_d1, mean_total)
        return rate, mix, own0, own1, sd0 / big_d0, sd1 / big_d1

    causes: dict[tuple[tuple[str, ...], tuple[str, ...]], Cause] = {}
    kept: list[npt.NDArray[np.intp]] = []
    for effect, found in searches:
        for f in found.found:
            element = cells.element(f)
            rate, mix, own0, own1, w0, w1 = effects(f.cells)
            moved = rate if effect == "rate" else mix
            if moved * way <= 0 or element in causes or (effect == "mix" and abs(mix) < MIX_SHARE * abs(total)):
                continue  # it moved, but that did not move the ratio the way it went: it does not explain it
            causes[element] = Cause(*element, own0, own1, rate + mix, _share(rate + mix, total),
                                    int(np.count_nonzero((d0[f.cells] != 0) | (d1[f.cells] != 0))), f.evidence,
                                    effect, mix, rate, w0, w1)
            kept.append(f.cells)
    if not kept:
        return Localization((), 0.0, _json(rate_search.noise))
    rate, mix, *_ = effects(np.unique(np.concatenate(kept)))
    return Localization(_ordered(list(causes.values())), rate + mix, _json(rate_search.noise))
