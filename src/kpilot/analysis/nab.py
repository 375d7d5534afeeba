"""The Numenta Anomaly Benchmark (NAB) score, re-implemented from its published rules.

Rules (Lavin & Ahmad 2015, "Evaluating real-time anomaly detection algorithms", and the NAB wiki):
each labelled anomaly sits in a window; within a window only the first detection counts, weighted by
a scaled sigmoid of its position (A_TP at the window start, towards 0 at its end); a detection outside
every window is a false positive weighted by the sigmoid of its distance past the preceding window
(-A_FP when far, or when no window precedes it); a window without detection costs -A_FN; the first
15 % of a file (at most 750 points) is a probationary period that is not scored. The corpus score is
the sum over files, normalised per profile as 100 * (S - S_null) / (S_perfect - S_null), where the
null detector detects nothing (S_null = -A_FN x windows) and the perfect one detects every window at
its start (S_perfect = A_TP x windows). The threshold is optimised per profile over the whole corpus.

Pure functions over arrays: the caller reads the files and turns window limits into indices
(`window_indices`). A detection is a score >= threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROBATION_FRACTION = 0.15
PROBATION_MAX_POINTS = 5000  # the probationary period is at most 15 % of 5,000 points
FAR_PAST_WINDOW = 3.0  # beyond 3 window widths after a window, a false positive costs the full -A_FP


@dataclass(frozen=True)
class CostMatrix:
    """A NAB application profile: the weights of a true positive, a false positive, a false negative."""

    tp_weight: float
    fp_weight: float
    fn_weight: float

    def to_dict(self) -> dict[str, object]:
        return {"tp_weight": self.tp_weight, "fp_weight": self.fp_weight, "fn_weight": self.fn_weight}


# The three published NAB profiles (NAB's config/profiles.json).
PROFILES: Mapping[str, CostMatrix] = {
    "standard": CostMatrix(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    "reward_low_FP_rate": CostMatrix(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    "reward_low_FN_rate": CostMatrix(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
}


@dataclass(frozen=True)
class FileLayout:
    """How each scored point of one file would count if detected, whatever the threshold.

    `window` and `unweighted` cover the points after the probationary period (`start` onwards):
    `window` is the index of the window holding the point (-1 outside any window); `unweighted` is
    the scaled sigmoid, divided by its value at the window start inside windows (so 1.0 there),
    and in [-1, 0) outside windows.
    """

    n_points: int
    start: int
    n_windows: int
    window: IntArray
    unweighted: FloatArray


@dataclass(frozen=True)
class FileScore:
    """The NAB score of one file at one threshold, with its point counts (as NAB's per-file table)."""

    threshold: float
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total_count: int

    def to_dict(self) -> dict[str, object]:
        return {"threshold": self.threshold, "score": self.score, "tp": self.tp, "tn": self.tn,
                "fp": self.fp, "fn": self.fn, "total_count": self.total_count}


@dataclass(frozen=True)
class Sweep:
    """Corpus score for every candidate threshold (descending), as NAB's optimiser sweeps them."""

    thresholds: FloatArray
    scores: FloatArray

    def best(self) -> tuple[float, float]:
        """The best (threshold, score); among ties the highest threshold, as NAB's stable sort keeps it."""
        i = int(np.argmax(self.scores))
        return float(self.thresholds[i]), float(self.scores[i])


def scaled_sigmoid(x: FloatArray | float) -> FloatArray:
    """2 / (1 + e^(5x)) - 1: +0.987 at x = -1 (a window start), 0 at x = 0, -1 beyond x = 3."""
    y = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        s = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > FAR_PAST_WINDOW, -1.0, s)


def probation_length(n_points: int, fraction: float = PROBATION_FRACTION) -> int:
    """Number of leading points that are not scored: 15 % of the file, at most 750."""
    return int(min(math.floor(fraction * n_points), fraction * PROBATION_MAX_POINTS))


def window_indices(timestamps: npt.ArrayLike, windows: Sequence[tuple[object, object]]) -> IntArray:
    """Window limits (start, end timestamps, inclusive) as (k, 2) inclusive row indices into `timestamps`."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    out = np.empty((len(windows), 2), dtype=np.int64)
    for k, (a, b) in enumerate(windows):
        out[k, 0] = np.searchsorted(ts, np.datetime64(str(a), "ns"), side="left")
        out[k, 1] = np.searchsorted(ts, np.datetime64(str(b), "ns"), side="right") - 1
    return out


def file_layout(n_points: int, windows: npt.ArrayLike, *, probation_fraction: float = PROBATION_FRACTION) -> FileLayout:
    """The sigmoid weights of one file of `n_points` with windows given as (k, 2) inclusive indices."""
    win = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    if len(win) > 1 and np.any(win[1:, 0] <= win[:-1, 1]):
        raise ValueError("windows must be sorted and disjoint")
    idx = np.arange(n_points, dtype=np.int64)
    window = np.full(n_points, -1, dtype=np.int64)
    unweighted = np.full(n_points, -1.0)  # before any window: full false-positive cost
    max_tp = float(scaled_sigmoid(-1.0))
    for k, (left, right) in enumerate(win):
        width = float(right - left + 1)
        inside = idx[left:right + 1]
        window[left:right + 1] = k
        unweighted[left:right + 1] = scaled_sigmoid(-(right - inside + 1) / width) / max_tp
        stop = win[k + 1, 0] if k + 1 < len(win) else n_points
        after = idx[right + 1:stop]
        # Distance past the window in units of its width less one (NAB: |i - right| / (width - 1)).
        unweighted[right + 1:stop] = scaled_sigmoid((after - right) / max(width - 1.0, 1.0))
    start = probation_length(n_points, probation_fraction)
    return FileLayout(n_points=n_points, start=start, n_windows=len(win),
                      window=window[start:], unweighted=unweighted[start:])


def point_weights(layout: FileLayout, costs: CostMatrix) -> FloatArray:
    """What each scored point adds if detected: A_TP x sigmoid inside windows, A_FP x sigmoid outside."""
    inside = layout.window >= 0
    return np.where(inside, costs.tp_weight * layout.unweighted, costs.fp_weight * layout.unweighted)


def score_file(scores: npt.ArrayLike, layout: FileLayout, costs: CostMatrix, threshold: float) -> FileScore:
    """NAB score of one file: a point is detected when its score >= threshold."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) != layout.n_points:
        raise ValueError(f"{len(s)} scores for a file of {layout.n_points} points")
    detected = s[layout.start:] >= threshold
    inside = layout.window >= 0
    weights = point_weights(layout, costs)
    fp_total = float(np.sum(weights[detected & ~inside]))
    window_total = 0.0
    for k in range(layout.n_windows):
        hit = detected & (layout.window == k)
        # The first detection is the best one: the sigmoid falls along the window.
        window_total += float(np.max(weights[hit])) if hit.any() else -costs.fn_weight
    return FileScore(
        threshold=float(threshold), score=window_total + fp_total,
        tp=int(np.sum(detected & inside)), tn=int(np.sum(~detected & ~inside)),
        fp=int(np.sum(detected & ~inside)), fn=int(np.sum(~detected & inside)), total_count=layout.n_points,
    )


def sweep(scores: Sequence[npt.ArrayLike], layouts: Sequence[FileLayout], costs: CostMatrix) -> Sweep:
    """Corpus score at every distinct anomaly score used as threshold, plus one above all (no detection).

    Vectorised: each window contributes, as the threshold falls, the increments of the best weight
    detected so far in it; each false positive contributes its (negative) weight.
    """
    if len(scores) != len(layouts):
        raise ValueError("one score array per file layout")
    all_scores: list[FloatArray] = []
    all_weights: list[FloatArray] = []
    all_windows: list[IntArray] = []
    offset = 0
    for s, lay in zip(scores, layouts, strict=True):
        arr = np.asarray(s, dtype=np.float64)
        if len(arr) != lay.n_points:
            raise ValueError(f"{len(arr)} scores for a file of {lay.n_points} points")
        all_scores.append(arr[lay.start:])
        all_weights.append(point_weights(lay, costs))
        all_windows.append(np.where(lay.window >= 0, lay.window + offset, -1))
        offset += lay.n_windows
    sc = np.concatenate(all_scores) if all_scores else np.zeros(0)
    w = np.concatenate(all_weights) if all_weights else np.zeros(0)
    win = np.concatenate(all_windows) if all_windows else np.zeros(0, dtype=np.int64)
    base = -costs.fn_weight * offset

    out_mask = win < 0
    ev_scores = [sc[out_mask]]
    ev_values = [w[out_mask]]
    ins = ~out_mask
    if ins.any():
        g, s_in, w_in = win[ins], sc[ins], w[ins]
        order = np.lexsort((-s_in, g))  # by window, then by descending score
        g, s_in, w_in = g[order], s_in[order], w_in[order]
        span = 2.0 * costs.tp_weight + 1.0  # in-window weights lie in (0, tp_weight]
        running = np.maximum.accumulate(w_in + g * span) - g * span  # best weight detected so far
        first = np.r_[True, g[1:] != g[:-1]]
        previous = np.where(first, -costs.fn_weight, np.r_[0.0, running[:-1]])
        ev_scores.append(s_in)
        ev_values.append(running - previous)
    es = np.concatenate(ev_scores)
    ev = np.concatenate(ev_values)
    order = np.argsort(es, kind="stable")
    es, ev = es[order], ev[order]
    suffix = np.r_[np.cumsum(ev[::-1])[::-1], 0.0]  # suffix[i] = sum of events i.. (scores >= es[i])
    thresholds = np.unique(sc)[::-1]
    above = max(1.1, float(thresholds[0]) + 0.1) if len(thresholds) else 1.1
    thresholds = np.r_[above, thresholds]
    totals = base + suffix[np.searchsorted(es, thresholds, side="left")]
    return Sweep(thresholds=thresholds, scores=totals)


def null_score(layouts: Sequence[FileLayout], costs: CostMatrix) -> float:
    """Corpus score of the detector that detects nothing: every window is missed."""
    return -costs.fn_weight * sum(lay.n_windows for lay in layouts)


def perfect_score(layouts: Sequence[FileLayout], costs: CostMatrix) -> float:
    """Corpus score of the detector that detects every window at its start, and nothing else."""
    return costs.tp_weight * sum(lay.n_windows for lay in layouts)


def normalized(score: float, null: float, perfect: float) -> float:
    """NAB's reported score: 100 x (S - S_null) / (S_perfect - S_null); 0 = null detector, 100 = perfect."""
    return 100.0 * (score - null) / (perfect - null)
