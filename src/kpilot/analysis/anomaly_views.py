"""Causal views of a series, shared by kpilot's two anomaly detectors (`kpilot.analysis.anomaly`).

A view is a transform of the series whose value at point i uses only points up to i: the value itself,
its step change, a trailing mean, its distance to a trailing median, the error of a seasonal baseline.
Each view is affine in the point's own value, view = (series - a part fixed by the past) / scale, so a
band on the view maps back to a band on the value (`value_band`); the detectors intersect these bands
to show the normal range of a point (`intersect_bands`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LEVEL_WINDOW = 12  # points in the level baseline's median (the expected value without a season)
SEASON_CYCLES = 3  # past cycles in the seasonal baseline's median
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class View:
    """One view of a series judged for surprise: its values, the index where it begins to exist, and how a
    point's own value enters it: view = (series - a part fixed by the past) / scale."""

    values: FloatArray
    start: int
    scale: float = 1.0


def causal(filter_name: str, x: FloatArray, width: int) -> FloatArray:
    """A filter over the window ending at each point (x[i-width+1 .. i]); the start is padded with x[0]."""
    from scipy import ndimage  # on first use: half a second of import the board does not need

    n = len(x)
    width = max(1, min(width, n))
    padded = np.r_[np.full(width - 1, x[0]), x]
    if filter_name == "median":
        out = ndimage.median_filter(padded, size=width, mode="nearest")
    elif filter_name == "max":
        out = ndimage.maximum_filter1d(padded, size=width, mode="nearest")
    else:
        out = ndimage.uniform_filter1d(padded, size=width, mode="nearest")
    start = width // 2
    return np.asarray(out[start:start + n], dtype=np.float64)


def past(x: FloatArray) -> FloatArray:
    """Shift by one point: the value at i is what was known before point i (NaN at 0)."""
    return np.concatenate(([np.nan], x[:-1]))


def signed_log(x: FloatArray) -> FloatArray:
    """sign(x) log(1 + |x|): multiplicative changes of a heavy-tailed count become additive."""
    return np.asarray(np.sign(x) * np.log1p(np.abs(x)), dtype=np.float64)


def signed_exp(v: FloatArray) -> FloatArray:
    """The inverse of `signed_log`."""
    with np.errstate(over="ignore"):
        return np.asarray(np.sign(v) * np.expm1(np.abs(v)), dtype=np.float64)


def identity(x: FloatArray) -> FloatArray:
    return x


def seasonal_baseline(x: FloatArray, season: int) -> FloatArray:
    """Median of the same phase in up to SEASON_CYCLES past cycles, plus the median recent gap to it."""
    n = len(x)
    lags = np.full((SEASON_CYCLES, n), np.nan)
    for k in range(1, SEASON_CYCLES + 1):
        if k * season < n:
            lags[k - 1, k * season:] = x[:-k * season]
    reference = np.full(n, np.nan)
    ok = np.any(~np.isnan(lags), axis=0)
    reference[ok] = np.nanmedian(lags[:, ok], axis=0)
    gap = np.where(ok, x - reference, 0.0)
    expected = reference + past(causal("median", gap, LEVEL_WINDOW))
    expected[: min(n, season + LEVEL_WINDOW)] = np.nan  # the gap's median needs a few cycles' points
    return expected


def median_step_seconds(timestamps: npt.ArrayLike) -> float | None:
    """The median spacing of a series' timestamps in seconds; None with fewer than 3 of them."""
    ts = np.asarray(timestamps, dtype="datetime64[s]").astype(np.int64)
    if len(ts) < 3:
        return None
    return float(np.median(np.diff(ts)))


def season_from_timestamps(timestamps: npt.ArrayLike) -> int | None:
    """The natural cycle of a series from its spacing: a day of intraday points, a week of days,
    a year of weeks or months. None when the spacing is irregular or longer than a month."""
    step = median_step_seconds(timestamps)
    day = DAY_SECONDS
    if step is None or step <= 0:
        return None
    if step < day:
        per_day = day / step
        return round(per_day) if per_day >= 4 and abs(per_day - round(per_day)) < 0.05 else None
    if abs(step - day) < 0.05 * day:
        return 7
    if abs(step - 7 * day) < 0.05 * day:
        return 52
    if 28 * day <= step <= 31 * day:
        return 12
    return None


def value_band(series: FloatArray, inverse: Callable[[FloatArray], FloatArray], view: View,
               view_low: FloatArray, view_high: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The values of the point that keep `view` within [view_low, view_high] (-inf, +inf where unknown).

    `series` is what the view is taken of (the values, or their signed log) and `inverse` maps it back
    to the values: the part of the view the past fixes is series - scale x view.
    """
    fixed = series - view.scale * view.values
    here = np.isfinite(view_low) & np.isfinite(view_high) & np.isfinite(fixed)
    with np.errstate(invalid="ignore"):
        low = np.where(here, inverse(fixed + view.scale * view_low), -np.inf)
        high = np.where(here, inverse(fixed + view.scale * view_high), np.inf)
    return low, high


def intersect_bands(lows: Sequence[FloatArray], highs: Sequence[FloatArray],
                    surprises: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The values every view finds normal: the intersection of their bands. Where the views disagree so
    much that no value suits them all, the band of the most surprised view (`surprises`: views x points)."""
    low, high = np.array(lows), np.array(highs)
    lower, upper = np.fmax.reduce(low), np.fmin.reduce(high)
    top = np.argmax(surprises, axis=0)[None]
    empty = lower > upper
    return (np.where(empty, np.take_along_axis(low, top, 0)[0], lower),
            np.where(empty, np.take_along_axis(high, top, 0)[0], upper))
