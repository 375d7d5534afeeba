"""Anomalies in monitoring series (intraday points, thousands of them): records, not deviations.

A server's CPU, a sensor's temperature, a feed's volume: such a series repeats its own ups and downs
all day long, and its spikes are heavy-tailed, so "k standard deviations off" fires on every busy hour.
What is worth a look is what the series has never done: a point is scored by how far one of its views
goes beyond the whole range that view has covered in its past (the last `HISTORY` points), in units of
that range:

    exceedance = max(view - past maximum, past minimum - view, 0) / (past maximum - past minimum)

Views (built from `kpilot.analysis.anomaly_views`): the value, its signed log, its 3- and 12-point
trailing means, its distance to the median of the previous 12 and of the previous 48 points, its change
from the level 48 points back (the median of points i-60 .. i-36, so that a spike back then does not
return as a fall now) and, with a season, the error of the seasonal baseline. Each view has its
tolerance (`TOLERANCES`); the ratio, max over views of exceedance / tolerance, is 1 where a view just
reaches its tolerance. Then:

- A view is judged once it has `VIEW_MIN_POINTS` points of its own past, and nothing is scored before
  `MIN_HISTORY` points: a short past has a narrow range that everything exceeds.
- Quiet after an alarm: a ratio of 1 or more silences the next `QUIET` points (one event, one alarm),
  unless a ratio exceeds `BREAKTHROUGH` times the largest one let through since the alarm.

The tolerances, the views and the quiet period were chosen on the Numenta Anomaly Benchmark (NAB),
whose 52 files present here are the only labelled monitoring data kpilot has: see docs/benchmarks.md for
what that tuning is worth on files it did not see (a two-fold cross-validation). Online, like the rest of
`kpilot.analysis.anomaly`: the ratio of point i uses only points up to i.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kpilot.analysis.anomaly_views import (
    LEVEL_WINDOW,
    FloatArray,
    View,
    causal,
    identity,
    intersect_bands,
    past,
    seasonal_baseline,
    signed_exp,
    signed_log,
    value_band,
)

# Exceedance (in units of the view's past range) at which each view alone raises an alarm.
TOLERANCES: dict[str, float] = {
    "value": 0.015,
    "log value": 0.28,
    "mean of 3": 0.16,
    "mean of 12": 0.06,
    "distance to median of 12": 0.02,
    "distance to median of 48": 0.008,
    "change from 48 points back": 0.06,
    "seasonal error": 0.14,
}
HISTORY = 6400  # past points whose range judges a view (about three weeks of 5-minute points)
MIN_HISTORY = 200  # points before any score
VIEW_MIN_POINTS = 25  # points of a view's own past before its records count
QUIET = 30  # points of silence after an alarm
LAG_BACK, LAG_WIDTH = 36, 25  # the level 48 points back: the median of points i-60 .. i-36
BREAKTHROUGH = 2.0  # during the quiet, a ratio this many times the alarm's still counts


@dataclass(frozen=True)
class RecordFit:
    """Per point: the ratio after the quiet period (0 where silenced), and, when asked, the normal range."""

    ratio: FloatArray
    lower: FloatArray
    upper: FloatArray


@dataclass(frozen=True)
class _Record:
    """A view with what its past covered: the series it is taken of, that series' inverse transform, the
    view, its tolerance, and the past minimum and maximum at each point (NaN before it is judged)."""

    series: FloatArray
    inverse: Callable[[FloatArray], FloatArray]
    view: View
    tolerance: float
    low: FloatArray
    high: FloatArray

    def exceedance(self) -> FloatArray:
        """How far the view goes beyond its past range, in units of that range; 0 within it or unjudged."""
        span = self._span()
        with np.errstate(invalid="ignore", divide="ignore"):
            e = np.fmax((self.view.values - self.high) / span, (self.low - self.view.values) / span)
        return np.where(np.isfinite(e) & (e > 0), e, 0.0)

    def _span(self) -> FloatArray:
        """The past range, floored: after a flat past any change is a (finite, large) exceedance."""
        floor = 1e-9 * (np.abs(self.high) + np.abs(self.low) + 1.0)
        return np.fmax(self.high - self.low, floor)

    def band(self, ratio: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The values of each point that keep this view's ratio below `ratio` (per point)."""
        margin = ratio * self.tolerance * self._span()
        return value_band(self.series, self.inverse, self.view, self.low - margin, self.high + margin)


def _views(x: FloatArray, season: int | None) -> dict[str, tuple[FloatArray, Callable[[FloatArray], FloatArray], View]]:
    """The views of the series (name: series, inverse, view), all causal."""
    log_x = signed_log(x)
    out: dict[str, tuple[FloatArray, Callable[[FloatArray], FloatArray], View]] = {
        "value": (x, identity, View(x, 0)),
        "log value": (log_x, signed_exp, View(log_x, 0)),
    }
    for span in (3, LEVEL_WINDOW):
        out[f"mean of {span}"] = (x, identity, View(causal("mean", x, span), span - 1, float(span)))
    for span in (LEVEL_WINDOW, 48):
        out[f"distance to median of {span}"] = (x, identity, View(x - past(causal("median", x, span)), span))
    # The change from the level 48 points back, that level a median over 25 points: a spike back then
    # does not come back as a fall now.
    back = np.full(len(x), np.nan)
    back[LAG_BACK:] = causal("median", x, LAG_WIDTH)[:-LAG_BACK]
    out["change from 48 points back"] = (x, identity, View(x - back, LAG_BACK + LAG_WIDTH - 1))
    if season is not None and season >= 2 and len(x) > season + LEVEL_WINDOW:
        out["seasonal error"] = (x, identity, View(x - seasonal_baseline(x, season), season + LEVEL_WINDOW))
    return out


def _past_range(view: View) -> tuple[FloatArray, FloatArray]:
    """Minimum and maximum of the view over each point's past (its last HISTORY points), NaN until
    VIEW_MIN_POINTS are seen."""
    n = len(view.values)
    low, high = np.full(n, np.nan), np.full(n, np.nan)
    values = view.values[view.start:]
    if len(values) > 0:
        high[view.start:] = past(causal("max", values, HISTORY))
        low[view.start:] = -past(causal("max", -values, HISTORY))
    low[:view.start + VIEW_MIN_POINTS] = np.nan
    high[:view.start + VIEW_MIN_POINTS] = np.nan
    return low, high


def _quiet(ratio: FloatArray, span: int) -> tuple[FloatArray, FloatArray]:
    """The ratios after the quiet periods, and the bar each point had to clear: 0 outside quiet periods,
    inside one BREAKTHROUGH times the largest ratio let through since its alarm (a ratio above the bar
    breaks through; every other one is silenced)."""
    bar = np.zeros(len(ratio))
    end, top = -1, 0.0
    for i in np.flatnonzero(ratio >= 1.0):
        if i <= end and ratio[i] <= bar[i]:
            continue
        if i > end:  # an alarm: the quiet period runs over the next `span` points
            end = int(i) + span
        top = float(ratio[i])
        bar[i + 1:end + 1] = BREAKTHROUGH * top
    silenced = (bar > 0) & (ratio <= bar)
    return np.where(silenced, 0.0, ratio), bar


def quiet_after_alarms(ratio: FloatArray, span: int) -> FloatArray:
    """Silence (0) every ratio in the `span` points after an alarm (ratio >= 1), unless it exceeds
    BREAKTHROUGH times the largest let through since the alarm. Online: each point depends on the past."""
    return _quiet(ratio, span)[0]


def _records(x: FloatArray, season: int | None) -> dict[str, _Record]:
    records = {}
    for name, (series, inverse, view) in _views(x, season).items():
        low, high = _past_range(view)
        records[name] = _Record(series, inverse, view, TOLERANCES[name], low, high)
    return records


def exceedances(x: FloatArray, season: int | None) -> dict[str, FloatArray]:
    """Each view's exceedance of its past range at every point of `x` (before tolerances and quiet)."""
    return {name: r.exceedance() for name, r in _records(x, season).items()}


def _combined(exceeded: dict[str, FloatArray], tolerances: dict[str, float]) -> FloatArray:
    """The largest exceedance / tolerance over the views; 0 before MIN_HISTORY points."""
    n = len(next(iter(exceeded.values())))
    ratio = np.zeros(n)
    for name, e in exceeded.items():
        ratio = np.maximum(ratio, e / tolerances[name])
    ratio[:MIN_HISTORY] = 0.0
    return ratio


def ratio_of(exceeded: dict[str, FloatArray], tolerances: dict[str, float], quiet: int = QUIET) -> FloatArray:
    """The ratio after the quiet periods, from the views' exceedances and their tolerances."""
    return quiet_after_alarms(_combined(exceeded, tolerances), quiet)


def fit(x: FloatArray, season: int | None, quiet: int | None = None, band_ratio: float | None = None) -> RecordFit:
    """The ratio of every point of `x` (finite values), after the quiet periods; with `band_ratio`, the values
    each point could have taken without being reported at that ratio (in a quiet period: without breaking
    through)."""
    n = len(x)
    records = _records(x, season)
    exceeded = {name: r.exceedance() for name, r in records.items()}
    ratio, bar = _quiet(_combined(exceeded, TOLERANCES), QUIET if quiet is None else quiet)
    lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
    if band_ratio is not None:
        ratios = np.array([exceeded[name] / r.tolerance for name, r in records.items()])
        bands = [r.band(np.fmax(band_ratio, bar)) for r in records.values()]
        lower, upper = intersect_bands([b[0] for b in bands], [b[1] for b in bands], ratios)
    return RecordFit(ratio=ratio, lower=lower, upper=upper)
