"""Forecast to target: a KPI's next values with an 80 % interval, the probability of meeting the target, and the
evidence behind them.

Several candidate models are backtested on the series' own recent past (rolling origin: refit on the history
up to each origin, forecast the following periods, compare with what happened; see
`kpilot.analysis.forecast_backtest`). The forecast is their combination, each weighted by the inverse square
of its backtest error, so a clearly better model dominates and close ones share. The interval comes from the
combination's backtest errors at each step ahead, not from the models' own assumptions, which are usually too
narrow. The evidence kept with the forecast: its backtest error beside that of the seasonal naive forecast
(the same value as a season ago; the last value when there is no season), and the share of backtest outcomes
that fell inside the interval it would have given at the time.

Candidates: `naive`, `seasonal_naive` (when a season is given), `drift`, `ses`, `ets_damped` (exponential
smoothing with a damped trend), `theta`, `arima` (ARIMA(p,1,0) with drift), `ar` (ARIMA(p,0,0) around a mean)
and `distributed_lag` (regression on measured leading indicators, when given).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special  # the distributions' functions, without scipy.stats' import time

from kpilot.analysis.forecast_backtest import (
    CANDIDATES,
    Leader,
    Trial,
    backtest,
    combination_weights,
    combine,
    half_widths,
    mean_abs_error,
    measured_coverage,
)
from kpilot.analysis.forecast_models import Array, mase, smape
from kpilot.model.errors import msg

__all__ = [
    "COMBINATION",
    "DEFAULT_WINDOW",
    "METHODS",
    "SHORT_HISTORY",
    "Forecast",
    "ForecastPoint",
    "Leader",
    "Trial",
    "backtest",
    "forecast",
    "mase",
    "probability_of_target",
    "smape",
]

COMBINATION = "combination"
METHODS = CANDIDATES  # what `methods` may restrict the candidates to
SHORT_HISTORY = "naive_short_history"
BASELINES = ("seasonal_naive", "naive")  # the first one the backtest could run is the yardstick
# Five years of weekly data: older regimes mislead trends, and the fitting time grows with the history.
# Chosen on the M4 weekly training series' last 13 weeks (156, 260 and 520 tried), not on the M4 test set.
DEFAULT_WINDOW = 260


@dataclass(frozen=True)
class ForecastPoint:
    """The forecast for one period ahead, with its interval at the forecast's level."""

    step: int  # 1 = the next period after the history
    value: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, object]:
        return {"step": self.step, "value": _num(self.value), "lower": _num(self.lower), "upper": _num(self.upper)}


@dataclass(frozen=True)
class Forecast:
    """What a series is expected to do next, by which method, and how that method fared on the series' past."""

    method: str  # COMBINATION, one of METHODS (when it alone was used), or SHORT_HISTORY
    level: float  # coverage the intervals aim at, e.g. 0.8
    points: tuple[ForecastPoint, ...]
    backtest: dict[str, float]  # candidate (and COMBINATION) -> rolling-origin error (error_metric)
    error: float  # backtest error of the forecast as made (nan when there was no backtest)
    error_metric: str = "MASE"  # mean absolute error over the history's mean absolute one-step change
    origins: int = 0  # number of full-horizon rolling origins in the backtest
    notes: tuple[str, ...] = field(default_factory=tuple)  # Messages: what was done to the data, fallbacks
    weights: dict[str, float] = field(default_factory=dict)  # candidate -> weight in the forecast (sum 1)
    baseline: str = ""  # the yardstick: seasonal_naive, or naive when there is no season
    baseline_error: float = math.nan  # its backtest error, same metric and origins
    relative_error: float = math.nan  # error / baseline_error: below 1, the forecast beat the yardstick
    coverage: float = math.nan  # share of backtest outcomes inside the interval the forecast gave then
    coverage_points: int = 0  # how many backtest outcomes `coverage` was measured on

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "level": self.level,
            "points": [p.to_dict() for p in self.points],
            "backtest": {k: _num(v) for k, v in self.backtest.items()},
            "error": _num(self.error),
            "error_metric": self.error_metric,
            "origins": self.origins,
            "notes": [str(n) for n in self.notes],
            "weights": {k: round(v, 4) for k, v in self.weights.items()},
            "baseline": self.baseline or None,
            "baseline_error": _num(self.baseline_error),
            "relative_error": _num(self.relative_error),
            "coverage": _num(self.coverage),
            "coverage_points": self.coverage_points,
        }

    def evidence(self) -> dict[str, object]:
        """What backs the forecast, JSON-ready: its backtest error beside the yardstick's, and the interval's
        measured coverage (None where there was no backtest)."""
        d = self.to_dict()
        keys = ("level", "error_metric", "error", "baseline", "baseline_error", "relative_error", "coverage",
                "coverage_points", "origins", "weights")
        return {k: d[k] for k in keys}


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _z(level: float) -> float:
    return float(special.ndtri(0.5 + level / 2))


def probability_of_target(point: ForecastPoint, target: float, *, direction: str, level: float = 0.8) -> float:
    """P(outcome meets target): 'up' -> P(y >= target), 'down' -> P(y <= target).

    The predictive distribution is normal, centred on the point forecast, with the spread implied by
    its interval at `level` (pass the forecast's level).
    """
    if direction not in ("up", "down"):
        raise ValueError(msg("Unknown direction {direction}: use up or down.", direction=direction))
    sigma = (point.upper - point.lower) / (2 * _z(level))
    if not sigma > 0:
        meets = point.value >= target if direction == "up" else point.value <= target
        return 1.0 if meets else 0.0
    below = float(special.ndtr((target - point.value) / sigma))
    return 1.0 - below if direction == "up" else below


# -- the forecast -------------------------------------------------------------------------------------------


def _clean(history: Sequence[float] | np.ndarray) -> tuple[Array, int, list[str]]:
    """Finite history, the number of leading NaN dropped, and notes on what was done."""
    y = np.asarray(history, dtype=float)
    notes: list[str] = []
    finite = np.isfinite(y)
    if not finite.any():
        raise ValueError(msg("The history has no values to forecast from."))
    first = int(np.argmax(finite))
    y = y[first:]
    finite = finite[first:]
    last = int(len(finite) - 1 - np.argmax(finite[::-1]))
    if last < len(y) - 1:  # the steps stay counted from the history's end: carry the last value forward
        notes.append(msg("The last {count} periods of the history have no value: the last known value was "
                         "carried forward.", count=len(y) - 1 - last))
        y = y.copy()
        y[last + 1 :] = y[last]
        finite = np.isfinite(y)
    missing = int((~finite).sum())
    if missing:
        idx = np.arange(len(y))
        y = y.copy()
        y[~finite] = np.interp(idx[~finite], idx[finite], y[finite])
        notes.append(msg("{count} missing periods inside the history were interpolated.", count=missing))
    return y, first, notes


def _align(leaders: Sequence[Leader], first: int) -> list[Leader]:
    """The leaders from the first period the history has data for."""
    return [Leader(np.asarray(ld.values, dtype=float)[first:], int(ld.lag)) for ld in leaders]


def _short_history(y: Array, h: int, level: float, notes: list[str]) -> Forecast:
    """Naive forecast with a wide interval: the size of period-to-period changes, growing with the step."""
    n = len(y)
    changes = np.diff(y)
    # The typical size of a change (a steady trend counts: it is not known to go on); with no change
    # yet, half the value.
    spread = math.sqrt(float(np.mean(np.square(changes)))) if n >= 2 else abs(float(y[-1])) * 0.5
    quantile = float(special.stdtrit(max(1, n - 2), 0.5 + level / 2))
    points = tuple(
        ForecastPoint(k, float(y[-1]), float(y[-1]) - quantile * spread * math.sqrt(k),
                      float(y[-1]) + quantile * spread * math.sqrt(k))
        for k in range(1, h + 1)
    )
    notes.append(msg("Only {count} periods of history: too few to compare methods, so the forecast repeats the "
                     "last value with a wide interval.", count=n))
    return Forecast(SHORT_HISTORY, level, points, {}, math.nan, notes=tuple(notes))


def forecast(
    history: Sequence[float] | np.ndarray,
    horizon: int,
    *,
    season: int | None = None,
    level: float = 0.8,
    leaders: Sequence[Leader] = (),
    methods: Sequence[str] | None = None,
    window: int | None = DEFAULT_WINDOW,
) -> Forecast:
    """Forecast `horizon` periods after `history` (oldest first, one value per complete period).

    `season` is the number of periods in a cycle (52 for weekly data with a yearly pattern, 12 for
    monthly); None for no seasonality. Leading NaN (periods before the data starts) are dropped,
    interior NaN are interpolated, trailing NaN take the last known value. `methods` restricts the
    candidates combined (default: all that apply). `window` keeps only the last `window` periods (None
    keeps all). The defaults are the product's: `kpilot forecast` and the M4 benchmark call this with
    the history, the horizon and the season only. Raises ValueError (with a Message) on unusable input.
    """
    if horizon < 1:
        raise ValueError(msg("The forecast horizon must be at least one period, not {horizon}.", horizon=horizon))
    if window is not None and window < 1:
        raise ValueError(msg("The forecast window must be at least one period, not {window}.", window=window))
    if not 0 < level < 1:
        raise ValueError(msg("The interval level must be between 0 and 1, not {level}.", level=level))
    chosen = tuple(METHODS if methods is None else methods)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ValueError(msg("Unknown forecast method {method}: use one of {known}.", method=unknown[0],
                             known=", ".join(METHODS)))
    y, first, notes = _clean(history)
    if window is not None and len(y) > window:
        first += len(y) - window
        y = y[-window:]
    tried = [m for m in METHODS if m in chosen or m in BASELINES]  # the yardsticks are always backtested
    trial = backtest(y, horizon, season=season, leaders=_align(leaders, first), methods=tried)
    if trial is None:
        return _short_history(y, horizon, level, notes)
    usable = {name: trial.score[name] for name in METHODS if name in chosen and name in trial.score}
    if not usable:
        notes.append(msg("No forecasting method could be fitted to this history."))
        return _short_history(y, horizon, level, notes)
    weights = combination_weights(usable)
    errors = combine(weights, trial.errors)
    scores = dict(usable)
    if len(weights) > 1:
        method = COMBINATION
        scores[COMBINATION] = mean_abs_error(errors) / trial.scale
    else:
        method = next(iter(weights))
    final = combine(weights, trial.final)
    half = half_widths(errors, level)
    points = tuple(ForecastPoint(k + 1, float(final[k]), float(final[k] - half[k]), float(final[k] + half[k]))
                   for k in range(horizon))
    baseline = next((b for b in BASELINES if b in trial.score), "")
    baseline_error = trial.score[baseline] if baseline else math.nan
    error = scores[method]
    relative = error / baseline_error if baseline_error > 0 else math.nan
    coverage, checked = measured_coverage(trial, level, list(usable))
    return Forecast(method, level, points, scores, error, origins=trial.origins, notes=tuple(notes),
                    weights=weights, baseline=baseline, baseline_error=baseline_error, relative_error=relative,
                    coverage=coverage, coverage_points=checked)

