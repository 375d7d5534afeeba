"""Anomalies in a metric's series: an online detector with a score in [0, 1) and a severity.

Each point is scored from the past only (appending or changing later points never changes an earlier
score), so the same function serves the weekly review and a live feed. Two methods, one entry point:
the series' spacing decides (`method_for`).

- **Surprise** (KPI series: a day or more per point, or no timestamps; what the product's metrics are).
  A few dozen to a few hundred points, trends and a yearly season: a point is judged by how many
  standard deviations each view of it lies from that view's past. Per point:

  1. Views of the series: the value itself, its step change (first difference), its 3- and 12-point
     trailing means (a level shift sustained over a few points), and, when a season is known, the
     error of a seasonal baseline (median of the same phase in up to three past cycles, plus the
     median recent gap to it). The same views of the signed log of the series, sign(x) log(1 + |x|),
     catch multiplicative changes of heavy-tailed counts.
  2. Surprise of each view: its distance to the mean of its own past, in standard deviations of that
     past (the last `HISTORY` points, or all of them while fewer). z = the largest of these.
  3. News, not repetition: a surprise no larger than the largest one of the previous `REPEAT_SPAN`
     points is damped (x `REPEAT_DAMPING`): an anomaly is reported once, not at every point it lasts.
  4. Quiet after an alarm: a surprise of `REFRACTORY_Z` (6) or more opens a period of `REFRACTORY_SPAN`
     points (at most one season) in which surprises are silenced (0) unless one exceeds
     `REFRACTORY_BREAKTHROUGH` (2) times the largest let through since the alarm.
  5. Score = z / (z + 3): 0.5 at 3 sigmas, 0.67 at 6, 0.75 at 9, 0.83 at 15.

  Its constants were chosen on the NAB corpus before the record method existed (docs/analysis.md).

- **Records** (monitoring series: intraday points, thousands of them, as in the Numenta Anomaly
  Benchmark): `kpilot.analysis.anomaly_records`. A point is judged by how far one of its views goes
  beyond the range that view has covered in its past; a record at a view's tolerance counts as the
  default threshold's surprise (z = 7), so scores, threshold and severities read the same way.

NaN values score 0 and are skipped by the model (it sees the series without them).

`detect` shows each anomaly with its normal range: the values none of the views would have flagged,
cut to the metric's domain (`kpilot.analysis.domain`: a count's range never goes below 0).
A surprising point lies outside the range of the view that found it, hence outside their intersection:
what is reported and the range shown agree. A series too short to have a past to judge by (fewer than
`min_history` points) reports nothing. A running total that restarts (a year to date) is judged on its
`increments`, not on its level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kpilot.analysis import anomaly_records
from kpilot.analysis.anomaly_views import (
    DAY_SECONDS,
    LEVEL_WINDOW,
    FloatArray,
    View,
    causal,
    identity,
    intersect_bands,
    median_step_seconds,
    past,
    season_from_timestamps,
    seasonal_baseline,
    signed_exp,
    signed_log,
    value_band,
)
from kpilot.analysis.domain import UNBOUNDED, Domain

__all__ = ["DEFAULT_THRESHOLD", "Anomaly", "anomaly_scores", "detect", "increments", "method_for", "score_of_z",
           "season_from_timestamps", "severity_of", "z_of_score"]

HISTORY = 6400  # past points whose mean and standard deviation judge each view
MEAN_SPANS = (3, 12)  # trailing means that reveal a sustained shift
MIN_POINTS = 10  # past points needed before a point is scored
REPEAT_SPAN = 400  # points over which a surprise no larger than a previous one is not news
REPEAT_DAMPING = 0.3
REFRACTORY_Z = 6.0  # a surprise from which a point is an alarm (score 2/3)
REFRACTORY_SPAN = 200  # points of quiet after an alarm (at most one season)
REFRACTORY_BREAKTHROUGH = 2.0  # during the quiet, a surprise this many times the alarm's still counts
Z_HALF = 3.0  # z at which the score is 0.5

DEFAULT_THRESHOLD = 0.7  # z = 7; for a monitoring series, a record at its view's tolerance
DEFAULT_MIN_HISTORY = 12
SEVERITY_MEDIUM = 0.75  # z = 9
SEVERITY_HIGH = 5.0 / 6.0  # z = 15


@dataclass(frozen=True)
class Anomaly:
    """A point whose value the past did not predict: where, how far off, how sure."""

    index: int
    value: float
    expected: float
    lower: float
    upper: float
    score: float  # 0..1
    severity: str  # 'low' | 'medium' | 'high'
    direction: str  # 'up' | 'down'

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "value": self.value, "expected": self.expected, "lower": self.lower,
                "upper": self.upper, "score": self.score, "severity": self.severity, "direction": self.direction}


@dataclass(frozen=True)
class _Fit:
    expected: FloatArray  # baseline forecast from the past (seasonal when known, else the recent median)
    score: FloatArray
    lower: FloatArray  # the values no view would find surprising at the band's z (-inf: no bound yet)
    upper: FloatArray


# A view as judged: the series it is taken of, the inverse of that series' transform, the view, and the
# mean and standard deviation of each point's past in it.
_Judged = tuple[FloatArray, Callable[[FloatArray], FloatArray], View, FloatArray, FloatArray]


def score_of_z(z: FloatArray | float) -> FloatArray:
    """The score of a surprise z (in standard deviations): z / (z + 3), in [0, 1)."""
    zz = np.maximum(np.asarray(z, dtype=np.float64), 0.0)
    return np.asarray(zz / (zz + Z_HALF), dtype=np.float64)


def z_of_score(score: float) -> float:
    """The surprise z a score stands for (inverse of `score_of_z`)."""
    s = min(max(score, 0.0), 1.0 - 1e-12)
    return Z_HALF * s / (1.0 - s)


def severity_of(score: float) -> str:
    """'high' from 0.83 (15 sigmas), 'medium' from 0.75 (9 sigmas), else 'low'."""
    if score >= SEVERITY_HIGH:
        return "high"
    if score >= SEVERITY_MEDIUM:
        return "medium"
    return "low"


def _past_moments(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and standard deviation of the points before each one: the last HISTORY, or all while fewer."""
    n = len(x)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    # Centre on the first value: sums of squares of large values lose precision otherwise.
    c = x - x[0]
    count = np.arange(1, n + 1, dtype=np.float64)
    mean = np.cumsum(c) / count
    mean2 = np.cumsum(c * c) / count
    if n > HISTORY:
        mean[HISTORY:] = causal("mean", c, HISTORY)[HISTORY:]
        mean2[HISTORY:] = causal("mean", c * c, HISTORY)[HISTORY:]
    mean, mean2 = past(mean), past(mean2)
    sd = np.sqrt(np.maximum(mean2 - mean * mean, 0.0))
    return mean + x[0], sd


def _judge(view: View) -> tuple[FloatArray, FloatArray]:
    """Mean and standard deviation of the past of each point of a view, the yardstick of its surprise;
    NaN until MIN_POINTS are seen from `view.start` (where it begins to exist: a short series may end first)."""
    n = len(view.values)
    mean, sd = np.full(n, np.nan), np.full(n, np.nan)
    if view.start < n:
        m, s = _past_moments(view.values[view.start:])
        floor = 1e-9 * (np.abs(m) + 1.0)  # a flat past: any change is a (finite) surprise
        mean[view.start:], sd[view.start:] = m, np.maximum(s, floor)
    mean[:view.start + MIN_POINTS] = np.nan
    return mean, sd


def _surprise(view: View, mean: FloatArray, sd: FloatArray) -> FloatArray:
    """|view - mean of its past| in standard deviations of its past; 0 where it is not judged yet."""
    z = np.abs(view.values - mean) / sd
    return np.where(np.isfinite(z), z, 0.0)


def _views(x: FloatArray, season: int | None) -> list[View]:
    """The views of a series judged for surprise: the value, its step change, its trailing means and,
    with a season, the error of the seasonal baseline."""
    step = np.r_[0.0, np.diff(x)]
    views = [View(x, 0), View(step, 1)] + [View(causal("mean", x, span), span - 1, float(span))
                                             for span in MEAN_SPANS]
    if season is not None:
        views.append(View(x - seasonal_baseline(x, season), season + LEVEL_WINDOW))
    return views


def _refractory(z: FloatArray, span: int) -> FloatArray:
    """Quiet after an alarm: a surprise of REFRACTORY_Z or more opens a period of `span` points in which
    every surprise is silenced (0) unless it exceeds REFRACTORY_BREAKTHROUGH times the largest one let
    through since the alarm. Online: each point depends only on the surprises before it."""
    out = z.copy()
    end, top = -1, 0.0
    for i in np.flatnonzero(z >= REFRACTORY_Z):
        if i > end:  # a new alarm: the period runs over the next `span` points
            out[i + 1:i + span + 1] = 0.0
            end, top = int(i) + span, float(z[i])
        elif z[i] > REFRACTORY_BREAKTHROUGH * top:  # far larger news breaks through
            out[i] = z[i]
            top = float(z[i])
    return out


def method_for(timestamps: npt.ArrayLike | None) -> str:
    """Which detector judges a series: 'records' for intraday points (monitoring data: a median spacing
    under a day), 'surprise' otherwise (KPI series, a day or more per point, or no timestamps)."""
    if timestamps is None:
        return "surprise"
    step = median_step_seconds(timestamps)
    return "records" if step is not None and 0 < step < DAY_SECONDS else "surprise"


def _fit(values: Sequence[float] | npt.ArrayLike, season: int | None, timestamps: npt.ArrayLike | None,
         quiet: int | None = None, band_z: float | None = None) -> _Fit:
    """Scores, baseline and, with `band_z`, the band of values that would score below `score_of_z(band_z)`."""
    x_all = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(x_all)
    out = _Fit(expected=np.full(len(x_all), np.nan), score=np.zeros(len(x_all)),
               lower=np.full(len(x_all), -np.inf), upper=np.full(len(x_all), np.inf))
    x = x_all[finite]
    n = len(x)
    if n <= MIN_POINTS:
        return out
    stamps = None if timestamps is None else np.asarray(timestamps)[finite]
    if season is None and stamps is not None:
        season = season_from_timestamps(stamps)

    has_season = season is not None and season >= 2 and n > season + LEVEL_WINDOW
    expected = past(causal("median", x, LEVEL_WINDOW))
    if season is not None and has_season:
        seasonal = seasonal_baseline(x, season)
        expected = np.where(np.isnan(seasonal), expected, seasonal)
    out.expected[finite] = expected
    if method_for(stamps) == "records":
        # A record at its view's tolerance (ratio 1) stands for the default threshold's surprise.
        alarm_z = z_of_score(DEFAULT_THRESHOLD)
        fit = anomaly_records.fit(x, season if has_season else None, quiet,
                                  band_ratio=None if band_z is None else band_z / alarm_z)
        out.score[finite] = score_of_z(alarm_z * fit.ratio)
        out.lower[finite], out.upper[finite] = fit.lower, fit.upper
        return out

    # The same views of the series and of its signed log (multiplicative changes of a heavy-tailed count).
    judged: list[_Judged] = [(series, inverse, view, *_judge(view))
              for series, inverse in ((x, identity), (signed_log(x), signed_exp))
              for view in _views(series, season if has_season else None)]
    surprises = np.array([_surprise(view, mean, sd) for _, _, view, mean, sd in judged])
    z = surprises.max(axis=0)
    # Not news: a surprise no larger than the largest of the previous REPEAT_SPAN points.
    repeated = np.nan_to_num(past(causal("max", z, REPEAT_SPAN)), nan=-1.0) >= z
    z = np.where(repeated, REPEAT_DAMPING * z, z)
    if quiet is None:
        quiet = min(REFRACTORY_SPAN, season) if season is not None and season >= 2 else REFRACTORY_SPAN
    z = _refractory(z, quiet)

    if band_z is not None:
        out.lower[finite], out.upper[finite] = _band(judged, surprises, band_z)
    out.score[finite] = score_of_z(z)
    return out


def _band(judged: Sequence[_Judged], surprises: FloatArray, band_z: float) -> tuple[FloatArray, FloatArray]:
    """The normal range of each point: the values none of its views would find `band_z` sigmas off.

    A point is surprising when one of its views is, that is when its value lies outside that view's band
    (mapped back to the value through the part of the view the past fixes, and the log's inverse for the
    views of the log): the normal range is the intersection of these bands. When the views disagree so
    much that no value suits them all (the step change expects a count to go on falling by one, its log
    expects no collapse to zero), the range is that of the most surprised view.
    """
    bands = [value_band(series, inverse, view, mean - band_z * sd, mean + band_z * sd)
             for series, inverse, view, mean, sd in judged]
    return intersect_bands([b[0] for b in bands], [b[1] for b in bands], surprises)


def anomaly_scores(values: Sequence[float] | npt.ArrayLike, *, season: int | None = None,
                   timestamps: npt.ArrayLike | None = None) -> FloatArray:
    """Anomaly score in [0, 1) of every point, online: score[i] depends only on values[:i+1].

    `season` is the cycle length in points (None: from `timestamps` when given, else no season).
    `timestamps` also choose the method (`method_for`): intraday points are judged as a monitoring series.
    NaN values get score 0 and do not update the model; the first MIN_POINTS points score 0 (a monitoring
    series: the first `anomaly_records.MIN_HISTORY`).
    """
    return _fit(values, season, timestamps).score


def increments(values: Sequence[float] | npt.ArrayLike, resets: Sequence[bool] | npt.ArrayLike) -> FloatArray:
    """What a running total added in each period: the change from the period before, or, where the total
    restarts (`resets[i]` true, e.g. each January for a year to date; the first point always), its value.

    A year-to-date level falls every January by design, and its size grows through the year: judged as a
    level, each reset looks like a collapse. Its increments are the period's own amounts, comparable
    from one period to the next.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    change = np.r_[x[:1], np.diff(x)]
    return np.where(np.asarray(resets, dtype=bool).ravel(), x, change)


def detect(values: Sequence[float] | npt.ArrayLike, *, season: int | None = None,
           threshold: float = DEFAULT_THRESHOLD, min_history: int = DEFAULT_MIN_HISTORY,
           timestamps: npt.ArrayLike | None = None, quiet: int | None = None,
           domain: Domain = UNBOUNDED) -> list[Anomaly]:
    """The points whose score is >= `threshold`, from index `min_history` on, each with the baseline's
    expected value and its normal range: the values that would have scored below `threshold` (for a KPI
    series, no view `z_of_score(threshold)` standard deviations off), kept inside `domain` (whole numbers for
    counts). A reported value always lies outside its range.

    `quiet`: points of silence after an alarm (KPI series: default one season, at most REFRACTORY_SPAN
    points; a KPI wants a few periods, not a year. Monitoring series: `anomaly_records.QUIET`). With fewer
    than `min_history` points nothing is reported: there is not enough history to judge by.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    fit = _fit(x, season, timestamps, quiet, band_z=z_of_score(threshold))
    found: list[Anomaly] = []
    for i in np.flatnonzero(fit.score >= threshold):
        if i < min_history or not np.isfinite(fit.expected[i]):
            continue
        value, low, high = float(x[i]), float(fit.lower[i]), float(fit.upper[i])
        expected = min(max(float(fit.expected[i]), low), high)  # the baseline, within the range
        expected, lower, upper = domain.interval(expected, low, high)
        if lower <= value <= upper:  # a surprise the domain rules out: a count that did not go below 0
            continue
        score = float(fit.score[i])
        found.append(Anomaly(
            index=int(i), value=value, expected=expected, lower=lower, upper=upper,
            score=score, severity=severity_of(score), direction="up" if value > upper else "down",
        ))
    return found
