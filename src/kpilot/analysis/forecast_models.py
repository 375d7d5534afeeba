"""The candidate forecasting models behind `kpilot.analysis.forecast`, and the M4 accuracy measures.

Each model takes a clean history (finite floats, oldest first) and a horizon and returns the point
forecasts for steps 1..horizon, or None when it cannot be fitted to that history. Exponential
smoothing (additive errors, so maximum likelihood is least squares) is written here as linear filters
(scipy.signal.lfilter) with the initial states solved in closed form: about 10x faster than
statsmodels' ETS, which matters because the backtest refits every model at every origin. Seasonal
series are adjusted first by a classical decomposition, as the M4 competition's benchmarks do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize, minimize_scalar
from scipy.signal import lfilter

Array = NDArray[np.float64]

# 90 % one-sided limit of the seasonality test at lag m (as in the M4 benchmarks).
SEASONALITY_Z = 1.645
MIN_CYCLES_TO_ADJUST = 3
MIN_POINTS_ETS = 6


@dataclass(frozen=True)
class LeaderSeries:
    """A leading indicator as the distributed-lag model sees it: values from the history's first period."""

    values: Array  # may run past the history (known future values) or stop short of it
    lag: int


# -- accuracy (M4 definitions) ------------------------------------------------------------------------------


def smape(actual: Sequence[float] | Array, predicted: Sequence[float] | Array) -> float:
    """Symmetric MAPE in percent, as in the M4 competition: mean of 200 |y - f| / (|y| + |f|)."""
    y, f = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    denom = np.abs(y) + np.abs(f)
    terms = np.where(denom > 0, 200.0 * np.abs(y - f) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(np.mean(terms))


def mase_scale(insample: Sequence[float] | Array, m: int = 1) -> float:
    """The MASE denominator: mean absolute m-step difference of the history (M4 used m = 1 for weekly)."""
    x = np.asarray(insample, dtype=float)
    if len(x) <= m:
        return math.nan
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def mase(
    insample: Sequence[float] | Array, actual: Sequence[float] | Array, predicted: Sequence[float] | Array, m: int = 1
) -> float:
    """Mean absolute scaled error: forecast MAE over the in-sample seasonal-naive MAE."""
    y, f = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    scale = mase_scale(insample, m)
    return float(np.mean(np.abs(y - f)) / scale) if scale > 0 else math.nan


# -- seasonal adjustment (classical decomposition, M4 style) ----------------------------------------------


def is_seasonal(y: Array, m: int) -> bool:
    """The M4 test: autocorrelation at lag m beyond its 90 % limit, with at least 3 full cycles."""
    n = len(y)
    if m < 2 or n < MIN_CYCLES_TO_ADJUST * m:
        return False
    x = y - y.mean()
    denom = float(np.dot(x, x))
    if denom <= 0:
        return False
    acf = np.array([np.dot(x[k:], x[: n - k]) / denom for k in range(1, m + 1)])
    limit = SEASONALITY_Z * math.sqrt((1 + 2 * float(np.sum(acf[:-1] ** 2))) / n)
    return bool(abs(acf[-1]) > limit)


def seasonal_indices(y: Array, m: int) -> tuple[Array, bool]:
    """Indices per position in the cycle (position 0 = the history's first period) and whether multiplicative.

    Multiplicative when every value is positive (the M4 choice), additive otherwise.
    """
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(y, w, mode="valid")
    start = (len(w) - 1) // 2
    mult = bool(np.all(y > 0))
    detr = y[start : start + len(trend)] / trend if mult else y[start : start + len(trend)] - trend
    pos = (np.arange(len(trend)) + start) % m
    idx = np.array([float(np.mean(detr[pos == k])) for k in range(m)])
    idx = idx / idx.mean() if mult else idx - idx.mean()
    return idx, mult


def deseasonalized(model: Callable[[Array, int], Array | None], m: int | None) -> Callable[[Array, int], Array | None]:
    """`model` applied to the seasonally adjusted history when the series passes the seasonality test."""
    if m is None or m < 2:
        return model

    def run(y: Array, h: int) -> Array | None:
        if not is_seasonal(y, m):
            return model(y, h)
        idx, mult = seasonal_indices(y, m)
        n = len(y)
        past, future = idx[np.arange(n) % m], idx[np.arange(n, n + h) % m]
        f = model(y / past if mult else y - past, h)
        if f is None:
            return None
        return f * future if mult else f + future

    return run


# -- the models ---------------------------------------------------------------------------------------------


def naive(y: Array, h: int) -> Array:
    return np.full(h, y[-1])


def seasonal_naive(y: Array, h: int, m: int) -> Array | None:
    if len(y) < m:
        return None
    return np.array([y[len(y) - m + (k % m)] for k in range(h)])


def drift(y: Array, h: int) -> Array | None:
    """Random walk with drift: the line through the first and last values, extended."""
    if len(y) < 2:
        return None
    slope = (y[-1] - y[0]) / (len(y) - 1)
    return np.asarray(y[-1] + slope * np.arange(1, h + 1), dtype=np.float64)


def _ses_path(y: Array, alpha: float) -> tuple[Array, Array]:
    """One-step forecasts of SES split as (part driven by y, part per unit of initial level)."""
    driven = np.concatenate(([0.0], lfilter([alpha], [1.0, alpha - 1.0], y)[:-1]))
    return np.asarray(driven, dtype=np.float64), np.asarray((1.0 - alpha) ** np.arange(len(y)), dtype=np.float64)


def _ses_fit(y: Array, alpha: float) -> tuple[float, float]:
    """The least-squares initial level for `alpha`, and the sum of squared one-step errors."""
    driven, unit = _ses_path(y, alpha)
    rest = y - driven
    level0 = float(np.dot(unit, rest) / np.dot(unit, unit))
    return level0, float(np.sum(np.square(rest - level0 * unit)))


def ses(y: Array, h: int) -> Array | None:
    """Simple exponential smoothing, ETS(A,N,N): alpha and the initial level by least squares."""
    if len(y) < MIN_POINTS_ETS:
        return None
    best = minimize_scalar(lambda a: _ses_fit(y, a)[1], bounds=(1e-4, 1 - 1e-4), method="bounded",
                           options={"xatol": 1e-5})
    alpha = float(best.x)
    level0, _ = _ses_fit(y, alpha)
    level = float(lfilter([alpha], [1.0, alpha - 1.0], y)[-1]) + (1.0 - alpha) ** len(y) * level0
    return np.full(h, level) if math.isfinite(level) else None


def _holt_parts(y: Array, alpha: float, beta: float, phi: float) -> tuple[Array, Array, Array]:
    """One-step forecasts of damped Holt as linear filters: the part driven by y, per unit of l0, per unit of b0.

    State x = (level, trend) after each observation: x_t = D x_(t-1) + g y_t with D = F - g w',
    F = [[1, phi], [0, phi]], w = (1, phi), g = (alpha, beta); the forecast of y_(t+1) is w' x_t.
    """
    d11, d12, d21, d22 = 1 - alpha, phi * (1 - alpha), -beta, phi * (1 - beta)
    den = [1.0, -(d11 + d22), d11 * d22 - d12 * d21]

    def num(v1: float, v2: float) -> list[float]:  # w' adj(I - D q) v
        return [v1 + phi * v2, -d22 * v1 + d12 * v2 + phi * (d21 * v1 - d11 * v2)]

    n = len(y)
    driven = np.concatenate(([0.0], lfilter(num(alpha, beta), den, y)[:-1]))
    impulse = np.zeros(n)
    impulse[0] = 1.0
    return driven, lfilter(num(1.0, 0.0), den, impulse), lfilter(num(0.0, 1.0), den, impulse)


def _holt_fit(y: Array, params: Array) -> tuple[Array, float]:
    alpha, beta_share, phi = (float(p) for p in params)
    driven, unit_l, unit_b = _holt_parts(y, alpha, alpha * beta_share, phi)
    basis = np.column_stack([unit_l, unit_b])
    rest = y - driven
    if not (np.all(np.isfinite(rest)) and np.all(np.isfinite(basis))):
        return np.zeros(2), math.inf
    gram = basis.T @ basis
    det = float(gram[0, 0] * gram[1, 1] - gram[0, 1] ** 2)
    if not abs(det) > 1e-12 * float(gram[0, 0] * gram[1, 1]):
        return np.zeros(2), math.inf
    rhs = basis.T @ rest
    x0 = np.array([gram[1, 1] * rhs[0] - gram[0, 1] * rhs[1], gram[0, 0] * rhs[1] - gram[0, 1] * rhs[0]]) / det
    return x0, float(np.sum(np.square(rest - basis @ x0)))


def ets_damped(y: Array, h: int) -> Array | None:
    """Exponential smoothing with an additive damped trend, ETS(A,Ad,N), fitted by least squares.

    Parameter bounds as in R's forecast package: 0 < beta < alpha < 1, 0.8 <= phi <= 0.98.
    """
    if len(y) < MIN_POINTS_ETS:
        return None
    scale = float(np.std(y)) or 1.0
    z = (y - float(np.mean(y))) / scale  # the fit is invariant to it, the optimizer likes unit scale
    fit = minimize(lambda p: _holt_fit(z, p)[1], np.array([0.5, 0.1, 0.9]), method="SLSQP",
                   bounds=[(1e-4, 1 - 1e-4), (1e-4, 1 - 1e-4), (0.8, 0.98)])
    alpha, beta, phi = float(fit.x[0]), float(fit.x[0] * fit.x[1]), float(fit.x[2])
    x0, sse = _holt_fit(z, fit.x)
    if not math.isfinite(sse):
        return None
    level, trend = float(x0[0]), float(x0[1])
    for v in z:
        err = v - (level + phi * trend)
        level, trend = level + phi * trend + alpha * err, phi * trend + beta * err
    damp = np.cumsum(phi ** np.arange(1, h + 1))
    f = (level + damp * trend) * scale + float(np.mean(y))
    return f if bool(np.all(np.isfinite(f))) else None


def theta(y: Array, h: int) -> Array | None:
    """The classic Theta method (Assimakopoulos & Nikolopoulos), as in the M4 benchmark code.

    Half the linear-regression trend line plus half of SES on the theta=2 line (2y - trend).
    """
    n = len(y)
    if n < MIN_POINTS_ETS:
        return None
    t = np.arange(1, n + 1, dtype=float)
    slope, intercept = np.polyfit(t, y, 1)
    line_in = intercept + slope * t
    line_out = intercept + slope * np.arange(n + 1, n + h + 1)
    s = ses(2 * y - line_in, h)
    if s is None:
        return None
    return np.asarray(0.5 * s + 0.5 * line_out, dtype=np.float64)


def distributed_lag(y: Array, h: int, leaders: Sequence[LeaderSeries]) -> Array | None:
    """y_t = a + r y_{t-1} + sum_k b_k x_k(t - lag_k), least squares; forecast recursively.

    A leader's value not known yet (beyond its last value) is taken as its last known value.
    """
    if not leaders:
        return None
    n = len(y)
    first = max(1, *(ld.lag for ld in leaders))
    rows = [t for t in range(first, n) if all(t - ld.lag < len(ld.values) for ld in leaders)]
    rows = [t for t in rows if all(math.isfinite(ld.values[t - ld.lag]) for ld in leaders)]
    n_params = 2 + len(leaders)
    if len(rows) < n_params + 5:
        return None

    def regressors(t: int, ys: Array) -> list[float]:
        out = [1.0, float(ys[t - 1])]
        for ld in leaders:
            last = min(t - ld.lag, len(ld.values) - 1)
            out.append(float(ld.values[last]))
        return out

    x = np.array([regressors(t, y) for t in rows])
    coef, *_ = np.linalg.lstsq(x, y[rows], rcond=None)
    path = np.r_[y, np.zeros(h)]
    for t in range(n, n + h):
        path[t] = float(np.dot(regressors(t, path), coef))
    out = path[n:]
    return out if bool(np.all(np.isfinite(out))) else None
