"""The rolling-origin backtest behind `kpilot.analysis.forecast`: candidates refitted at past origins, their weights
in the combination, the interval calibrated on their errors, and that interval's coverage measured.

Every candidate is refitted on the history up to each of the last origins and forecasts the periods that
follow; what happened is compared with it. From those errors come (1) each candidate's weight in the
combination, inversely proportional to the square of its backtest error (Bates & Granger, 1969), among the
candidates within twice the best one's error: a combination of several models beats picking one on a short
backtest, and the weights let a clearly better model dominate; (2) the interval, from the combination's own
errors at each step ahead; (3) the coverage that interval has had: each later origin's outcomes against the
interval built from the errors known before that origin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from kpilot.analysis.forecast_models import (
    MIN_POINTS_ETS,
    Array,
    LeaderSeries,
    ar,
    arima,
    distributed_lag,
    drift,
    ets_damped,
    ets_damped_params,
    mase_scale,
    naive,
    seasonal_adjustment,
    seasonal_naive,
    ses,
    ses_alpha,
    theta,
    theta_alpha,
)

# In order of simplicity: the order in which candidates are listed and tried.
CANDIDATES = ("naive", "seasonal_naive", "drift", "ses", "ets_damped", "theta", "arima", "ar", "distributed_lag")
ADJUSTED = ("drift", "ses", "ets_damped", "theta", "arima", "ar")  # fitted to the seasonally adjusted history
MIN_TRAIN = 8  # the shortest history a backtest origin fits on
MIN_ORIGINS = 4
MAX_ORIGINS = 24  # full-horizon origins; the origins run to the last period, so step 1 is tried more often
MIN_KNOWN = 4  # errors per step needed before an origin's outcomes count in the measured coverage
TRIM = 2.0  # chosen on the M4 weekly training series' last weeks (1.5 and 2 tried, and no trimming)
PERFECT = 1e-9  # a backtest error this small (relative to the series' changes) is an exact fit
# The smoothing models' parameters are re-estimated at every REFIT-th origin and kept at the origins between
# (their states are refitted at every origin): several times faster, and the errors stay out of sample.
REFIT = 6

Model = Callable[[Array, int], Array | None]
Params = dict[str, Any]  # method -> its fitted parameters, reused while the backtest moves on
MODELS: dict[str, Model] = {"drift": drift, "arima": arima, "ar": ar}
FITTED: dict[str, tuple[Callable[[Array], Any], Callable[[Array, int, Any], Array | None]]] = {
    "ses": (ses_alpha, ses), "ets_damped": (ets_damped_params, ets_damped), "theta": (theta_alpha, theta)}


@dataclass(frozen=True)
class Leader:
    """A measured leading indicator for the distributed-lag model."""

    values: np.ndarray  # aligned with the history's periods, possibly longer (known future values)
    lag: int  # the follower at t responds to the leader at t - lag


@dataclass(frozen=True)
class Trial:
    """A rolling-origin backtest of the candidates on one clean series, and their forecasts from its end."""

    origins: int  # full-horizon origins
    errors: dict[str, Array]  # method -> [origin (oldest first), step - 1]: actual - forecast; NaN past the history
    score: dict[str, float]  # method -> mean over steps of the MAE, over the history's mean one-step change (MASE)
    final: dict[str, Array]  # method -> point forecasts after the whole history
    scale: float  # the MASE denominator


def run(
    methods: Sequence[str], y: Array, h: int, season: int | None, leaders: Sequence[LeaderSeries],
    params: Params | None = None,
) -> dict[str, Array]:
    """Point forecasts of every method in `methods` that can be fitted to `y`.

    The seasonal adjustment (when `season` is given and the history passes the seasonality test) is
    computed once and shared by the models fitted to the adjusted history. `params`: parameters to reuse,
    by method; those missing are fitted and added.
    """
    out: dict[str, Array] = {}
    adjustment = seasonal_adjustment(y, season, h) if any(m in ADJUSTED for m in methods) else None
    adjusted = adjustment.adjusted if adjustment is not None else y
    for name in methods:
        f: Array | None = None
        if name == "naive":
            f = naive(y, h)
        elif name == "seasonal_naive":
            f = seasonal_naive(y, h, season) if season is not None and season >= 2 else None
        elif name == "distributed_lag":
            f = distributed_lag(y, h, leaders) if leaders else None
        else:
            if name in FITTED:
                if len(adjusted) >= MIN_POINTS_ETS:
                    fit, model = FITTED[name]
                    known = params if params is not None else {}
                    if name not in known:
                        known[name] = fit(adjusted)
                    f = model(adjusted, h, known[name])
            else:
                f = MODELS[name](adjusted, h)
            if f is not None and adjustment is not None:
                f = adjustment.restore(f)
        if f is not None and bool(np.all(np.isfinite(f))):
            out[name] = f
    return out


def leaders_at(leaders: Sequence[Leader], n: int, origin: int) -> list[LeaderSeries]:
    """The leaders as known at `origin`: as many periods past it as they run past the history."""
    out = []
    for ld in leaders:
        values = np.asarray(ld.values, dtype=float)
        ahead = len(values) - n
        out.append(LeaderSeries(values[: max(0, origin + ahead)], ld.lag))
    return out


def backtest(
    y: Array,
    horizon: int,
    *,
    season: int | None = None,
    leaders: Sequence[Leader] = (),
    methods: Sequence[str] = CANDIDATES,
) -> Trial | None:
    """Refit every method on y[:o] for the last origins o, forecast up to `horizon` steps, keep the errors.

    `y` must be clean (finite); `leaders` aligned with it. A method enters the trial only if it could be
    fitted at every origin. None when the history is too short for MIN_ORIGINS origins.
    """
    n = len(y)
    n_origins = min(MAX_ORIGINS, n - MIN_TRAIN - horizon + 1)
    if n_origins < MIN_ORIGINS:
        return None
    rows = n_origins + horizon - 1
    first = n - rows
    errors = {name: np.full((rows, horizon), np.nan) for name in methods}
    complete = set(methods)
    params: Params = {}
    for i in range(rows):
        o = first + i
        steps = min(horizon, n - o)
        if i % REFIT == 0:
            params = {}
        runs = run(methods, y[:o], steps, season, leaders_at(leaders, n, o), params)
        complete &= set(runs)
        for name, f in runs.items():
            errors[name][i, :steps] = y[o : o + steps] - f
    scale = mase_scale(y, 1)
    if not scale > 0:
        scale = float(np.mean(np.abs(y))) or 1.0
    kept = {name: errors[name] for name in methods if name in complete}
    score = {name: mean_abs_error(e) / scale for name, e in kept.items()}
    final = run(list(kept), y, horizon, season, leaders_at(leaders, n, n))
    kept = {name: e for name, e in kept.items() if name in final}
    return Trial(n_origins, kept, {k: score[k] for k in kept}, final, scale)


def mean_abs_error(errors: Array) -> float:
    """Mean over steps ahead of the mean absolute error at that step (each step counts once)."""
    per_step = [np.abs(col[np.isfinite(col)]) for col in errors.T]
    return float(np.mean([np.mean(v) for v in per_step if len(v)]))


def combination_weights(score: Mapping[str, float]) -> dict[str, float]:
    """Each method's weight: inversely proportional to its squared backtest error, summing to 1.

    Methods whose error is more than TRIM times the best one's get none (a few poor candidates would
    otherwise dilute a clearly better one); a method whose error is nil (it fits the series exactly)
    takes all the weight.
    """
    if not score:
        return {}
    best = min(score.values())
    if best <= PERFECT:
        winner = next(k for k, v in score.items() if v <= PERFECT)
        return {winner: 1.0}
    raw = {k: 1.0 / (v * v) for k, v in score.items() if v <= TRIM * best}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


def combine(weights: Mapping[str, float], values: Mapping[str, Array]) -> Array:
    """The weighted sum of the methods' arrays (forecasts, or errors: the weights sum to 1)."""
    return np.asarray(sum(w * values[k] for k, w in weights.items()), dtype=np.float64)


def half_widths(errors: Array, level: float) -> Array:
    """Half the interval's width per step: the RMS of the errors at that step times a Student quantile for
    the few errors it rests on, never narrower than at an earlier step. NaN where a step has no error."""
    out = []
    for col in errors.T:
        e = col[np.isfinite(col)]
        if len(e) == 0:
            out.append(math.nan)
            continue
        q = float(special.stdtrit(max(1, len(e) - 1), 0.5 + level / 2))
        out.append(q * math.sqrt(float(np.mean(np.square(e)))))
    return np.fmax.accumulate(np.asarray(out, dtype=np.float64))


def measured_coverage(trial: Trial, level: float, methods: Sequence[str]) -> tuple[float, int]:
    """The share of the backtest's outcomes that fell inside the interval the forecast would have given then.

    For each origin with at least MIN_KNOWN earlier errors at every step, the weights and the interval are
    rebuilt from the errors known at that origin only (outcomes before it), and its own outcomes are
    checked against them. `methods`: the candidates combined. Returns (share, number of outcomes checked);
    (nan, 0) when none could be.
    """
    candidates = {k: trial.errors[k] for k in methods}
    rows, horizon = next(iter(candidates.values())).shape
    age = np.arange(rows)[:, None] + np.arange(horizon)[None, :]  # row j's step k is seen at origin j + k + 1
    hits = total = 0
    for i in range(horizon - 1 + MIN_KNOWN, rows):
        known = age < i
        score = {k: mean_abs_error(np.where(known, e, np.nan)) / trial.scale for k, e in candidates.items()}
        weights = combination_weights(score)
        errors = combine(weights, candidates)
        half = half_widths(np.where(known, errors, np.nan), level)
        outcome = errors[i]
        seen = np.isfinite(outcome)
        hits += int(np.sum(np.abs(outcome[seen]) <= half[seen]))
        total += int(np.sum(seen))
    return (hits / total if total else math.nan), total
