"""Forecast to target: a KPI's next values with an 80 % interval, and the probability of meeting the target.

Several candidate models are backtested on the series' own recent past (rolling origin: refit on
the history up to each origin, forecast the following periods, compare with what happened); the one
with the lowest error (MASE) is kept, and the interval comes from that backtest's errors per step
ahead — not from the model's own assumptions, which are usually too narrow.

Candidates: `naive`, `seasonal_naive` (when a season is given), `drift`, `ses`, `ets_damped`
(exponential smoothing with a damped trend), `theta`, `distributed_lag` (regression on measured leading
indicators, when given) and `combination` (the mean of ses, ets_damped and theta).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special  # the distributions' functions, without scipy.stats' import time

from kpilot.analysis.forecast_models import (
    Array,
    LeaderSeries,
    deseasonalized,
    distributed_lag,
    drift,
    ets_damped,
    mase,
    mase_scale,
    naive,
    seasonal_naive,
    ses,
    smape,
    theta,
)
from kpilot.model.errors import msg

__all__ = [
    "COMBINATION",
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
COMBINED = ("ses", "ets_damped", "theta")
# In order of simplicity: on a tie in backtest error the simpler model wins.
METHODS = ("naive", "seasonal_naive", "drift", "ses", "ets_damped", "theta", "distributed_lag", COMBINATION)
SHORT_HISTORY = "naive_short_history"
MIN_TRAIN = 8  # the shortest history a backtest origin fits on
MIN_ORIGINS = 4
MAX_ORIGINS = 12
TIE = 1e-9


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
    """What a series is expected to do next, by which method, and how wrong that method was lately."""

    method: str  # one of METHODS, or SHORT_HISTORY when the history was too short to backtest
    level: float  # coverage the intervals aim at, e.g. 0.8
    points: tuple[ForecastPoint, ...]
    backtest: dict[str, float]  # candidate method -> rolling-origin error (error_metric)
    error: float  # backtest error of the chosen method (nan when there was no backtest)
    error_metric: str = "MASE"  # mean absolute error over the history's mean absolute one-step change
    origins: int = 0  # number of rolling origins in the backtest
    notes: tuple[str, ...] = field(default_factory=tuple)  # Messages: what was done to the data, fallbacks

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
        }


@dataclass(frozen=True)
class Leader:
    """A measured leading indicator for the distributed-lag model."""

    values: np.ndarray  # aligned with the history's periods, possibly longer (known future values)
    lag: int  # the follower at t responds to the leader at t - lag


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


def _models(season: int | None, leaders: Sequence[LeaderSeries]) -> dict[str, Callable[[Array, int], Array | None]]:
    out: dict[str, Callable[[Array, int], Array | None]] = {
        "naive": naive,
        "drift": deseasonalized(drift, season),
        "ses": deseasonalized(ses, season),
        "ets_damped": deseasonalized(ets_damped, season),
        "theta": deseasonalized(theta, season),
    }
    if season is not None and season >= 2:
        m = season
        out["seasonal_naive"] = lambda y, h: seasonal_naive(y, h, m)
    if leaders:
        out["distributed_lag"] = lambda y, h: distributed_lag(y, h, leaders)
    return out


def _run(
    methods: Sequence[str], y: Array, h: int, season: int | None, leaders: Sequence[LeaderSeries]
) -> dict[str, Array]:
    """Point forecasts of every method that can run on `y` (the combination from its parts)."""
    models = _models(season, leaders)
    needed = set(methods) | (set(COMBINED) if COMBINATION in methods else set())
    out: dict[str, Array] = {}
    for name in METHODS:
        if name in needed and name in models:
            f = models[name](y, h)
            if f is not None:
                out[name] = f
    if COMBINATION in methods and all(c in out for c in COMBINED):
        out[COMBINATION] = np.mean([out[c] for c in COMBINED], axis=0)
    return {k: v for k, v in out.items() if k in methods}


def _align(leaders: Sequence[Leader], first: int) -> list[Leader]:
    """The leaders from the first period the history has data for."""
    return [Leader(np.asarray(ld.values, dtype=float)[first:], int(ld.lag)) for ld in leaders]


def _leaders_at(leaders: Sequence[Leader], n: int, origin: int) -> list[LeaderSeries]:
    """The leaders as known at `origin`: as many periods past it as they run past the history."""
    out = []
    for ld in leaders:
        values = np.asarray(ld.values, dtype=float)
        ahead = len(values) - n
        out.append(LeaderSeries(values[: max(0, origin + ahead)], ld.lag))
    return out


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
    window: int | None = None,
) -> Forecast:
    """Forecast `horizon` periods after `history` (oldest first, one value per complete period).

    `season` is the number of periods in a cycle (52 for weekly data with a yearly pattern, 12 for
    monthly); None for no seasonality. Leading NaN (periods before the data starts) are dropped,
    interior NaN are interpolated, trailing NaN take the last known value. `methods` restricts the
    candidates (default: all that apply). `window` keeps only the last `window` periods (old regimes
    mislead the trend; None keeps all). Raises ValueError (with a Message) on unusable input.
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
    trial = backtest(y, horizon, season=season, leaders=_align(leaders, first), methods=chosen)
    if trial is None:
        return _short_history(y, horizon, level, notes)
    usable = [name for name in METHODS if name in trial.errors and name in trial.final]
    if not usable:
        notes.append(msg("No forecasting method could be fitted to this history."))
        return _short_history(y, horizon, level, notes)
    best = min(trial.score[name] for name in usable)
    method = next(name for name in usable if trial.score[name] <= best * (1 + TIE) + TIE)
    errors, final = trial.errors[method], trial.final[method]

    # Interval: RMS of the backtest errors at each step (never narrower than at an earlier step),
    # with a Student quantile for the few errors it rests on.
    sigma = np.maximum.accumulate([math.sqrt(float(np.mean(np.square(step)))) for step in errors])
    points = []
    for k in range(horizon):
        q = float(special.stdtrit(max(1, len(errors[k]) - 1), 0.5 + level / 2))
        value = float(final[k])
        points.append(ForecastPoint(k + 1, value, value - q * float(sigma[k]), value + q * float(sigma[k])))
    return Forecast(method, level, tuple(points), dict(trial.score), trial.score[method], origins=trial.origins,
                    notes=tuple(notes))


@dataclass(frozen=True)
class Trial:
    """A rolling-origin backtest of the candidates on one clean series, and their forecasts from its end."""

    origins: int
    errors: dict[str, list[list[float]]]  # method -> per step ahead (0-based), actual - forecast at each origin
    score: dict[str, float]  # method -> mean over steps of the MAE, over the history's mean one-step change
    final: dict[str, Array]  # method -> point forecasts after the whole history


def backtest(
    y: Array,
    horizon: int,
    *,
    season: int | None = None,
    leaders: Sequence[Leader] = (),
    methods: Sequence[str] = METHODS,
) -> Trial | None:
    """Refit every candidate on y[:o] for the last origins o, forecast up to `horizon` steps, keep the errors.

    `y` must be clean (finite); `leaders` aligned with it. The origins run to the last period, so the
    first steps ahead are tried more often than the last. None when the history is too short.
    """
    n = len(y)
    n_origins = min(MAX_ORIGINS, n - MIN_TRAIN - horizon + 1)
    if n_origins < MIN_ORIGINS:
        return None
    errors: dict[str, list[list[float]]] = {}
    for o in range(n - n_origins - horizon + 1, n):
        steps = min(horizon, n - o)
        runs = _run(methods, y[:o], steps, season, _leaders_at(leaders, n, o))
        for name, f in runs.items():
            errors.setdefault(name, [[] for _ in range(horizon)])
            for k in range(steps):
                errors[name][k].append(float(y[o + k] - f[k]))
    complete = {name: e for name, e in errors.items()
                if all(len(e[k]) == n_origins + horizon - 1 - k for k in range(horizon))}
    scale = mase_scale(y, 1)
    if not scale > 0:
        scale = float(np.mean(np.abs(y))) or 1.0
    score = {name: float(np.mean([np.mean(np.abs(step)) for step in e])) / scale for name, e in complete.items()}
    final = _run(methods, y, horizon, season, _leaders_at(leaders, n, n))
    return Trial(n_origins, complete, score, final)
