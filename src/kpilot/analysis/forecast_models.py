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
MAX_AR_ORDER = 3


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


@dataclass(frozen=True)
class SeasonalAdjustment:
    """A history with its seasonal pattern taken out, and the pattern of the periods to forecast."""

    adjusted: Array
    future: Array  # the seasonal index of steps 1..h
    multiplicative: bool

    def restore(self, f: Array) -> Array:
        """Put the season back into forecasts of the adjusted history (as many steps as given)."""
        index = self.future[: len(f)]
        return np.asarray(f * index if self.multiplicative else f + index, dtype=np.float64)


def seasonal_adjustment(y: Array, m: int | None, h: int) -> SeasonalAdjustment | None:
    """The classical decomposition's adjustment when the history passes the seasonality test, else None."""
    if m is None or m < 2 or not is_seasonal(y, m):
        return None
    idx, mult = seasonal_indices(y, m)
    n = len(y)
    past, future = idx[np.arange(n) % m], idx[np.arange(n, n + h) % m]
    if mult and not bool(np.all(past > 0)):
        return None
    return SeasonalAdjustment(y / past if mult else y - past, future, mult)


def deseasonalized(model: Callable[[Array, int], Array | None], m: int | None) -> Callable[[Array, int], Array | None]:
    """`model` applied to the seasonally adjusted history when the series passes the seasonality test."""

    def run(y: Array, h: int) -> Array | None:
        adjustment = seasonal_adjustment(y, m, h)
        if adjustment is None:
            return model(y, h)
        f = model(adjustment.adjusted, h)
        return None if f is None else adjustment.restore(f)

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


def ses_alpha(y: Array) -> float:
    """SES's smoothing parameter by least squares of the one-step errors (initial level solved exactly)."""
    best = minimize_scalar(lambda a: _ses_fit(y, a)[1], bounds=(1e-4, 1 - 1e-4), method="bounded",
                           options={"xatol": 1e-5})
    return float(best.x)


def ses(y: Array, h: int, alpha: float | None = None) -> Array | None:
    """Simple exponential smoothing, ETS(A,N,N): alpha (unless given) and the initial level by least squares."""
    if len(y) < MIN_POINTS_ETS:
        return None
    if alpha is None:
        alpha = ses_alpha(y)
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


def _standard(y: Array) -> tuple[Array, float, float]:
    """y on a unit scale (the least-squares fit is invariant to it; the optimizer likes it), its mean and scale."""
    scale = float(np.std(y)) or 1.0
    mean = float(np.mean(y))
    return (y - mean) / scale, mean, scale


def ets_damped_params(y: Array) -> tuple[float, float, float]:
    """ETS(A,Ad,N)'s (alpha, beta / alpha, phi) by least squares of the one-step errors."""
    z, _, _ = _standard(y)
    fit = minimize(lambda p: _holt_fit(z, p)[1], np.array([0.5, 0.1, 0.9]), method="SLSQP",
                   bounds=[(1e-4, 1 - 1e-4), (1e-4, 1 - 1e-4), (0.8, 0.98)])
    return float(fit.x[0]), float(fit.x[1]), float(fit.x[2])


def ets_damped(y: Array, h: int, params: tuple[float, float, float] | None = None) -> Array | None:
    """Exponential smoothing with an additive damped trend, ETS(A,Ad,N), fitted by least squares.

    Parameter bounds as in R's forecast package: 0 < beta < alpha < 1, 0.8 <= phi <= 0.98. `params`
    (from `ets_damped_params`) are used as given; the initial states are always solved for `y`.
    """
    if len(y) < MIN_POINTS_ETS:
        return None
    z, mean, scale = _standard(y)
    if params is None:
        params = ets_damped_params(y)
    x0, sse = _holt_fit(z, np.array(params))
    if not math.isfinite(sse):
        return None
    alpha, beta, phi = params[0], params[0] * params[1], params[2]
    level, trend = float(x0[0]), float(x0[1])
    for v in z:
        err = v - (level + phi * trend)
        level, trend = level + phi * trend + alpha * err, phi * trend + beta * err
    damp = np.cumsum(phi ** np.arange(1, h + 1))
    f = (level + damp * trend) * scale + mean
    return f if bool(np.all(np.isfinite(f))) else None


def _theta_line(y: Array, h: int) -> tuple[Array, Array]:
    """The linear-regression trend over the history and its extension over the next h periods."""
    n = len(y)
    t = np.arange(1, n + 1, dtype=float)
    slope, intercept = np.polyfit(t, y, 1)
    return intercept + slope * t, intercept + slope * np.arange(n + 1, n + h + 1)


def theta_alpha(y: Array) -> float:
    """The smoothing parameter of Theta's SES on the theta=2 line."""
    line, _ = _theta_line(y, 1)
    return ses_alpha(2 * y - line)


def theta(y: Array, h: int, alpha: float | None = None) -> Array | None:
    """The classic Theta method (Assimakopoulos & Nikolopoulos), as in the M4 benchmark code.

    Half the linear-regression trend line plus half of SES on the theta=2 line (2y - trend); `alpha`
    (from `theta_alpha`) is used as given.
    """
    if len(y) < MIN_POINTS_ETS:
        return None
    line_in, line_out = _theta_line(y, h)
    s = ses(2 * y - line_in, h, alpha)
    if s is None:
        return None
    return np.asarray(0.5 * s + 0.5 * line_out, dtype=np.float64)


def arima(y: Array, h: int) -> Array | None:
    """ARIMA(p,1,0) with drift: an autoregression of the period-to-period changes on their own last p values.

    p from 0 to 3, chosen by AICc on a common sample, then refitted by least squares on all the changes
    it can use; an order whose autoregression is not stationary is skipped (p = 0, the drift alone,
    always qualifies).
    """
    d = np.diff(y)
    if len(d) < MIN_POINTS_ETS + MAX_AR_ORDER:
        return None
    best: tuple[float, int] | None = None
    for p in range(MAX_AR_ORDER + 1):
        coef, sse, size = _ar_fit(d, p, MAX_AR_ORDER)
        if p and not _stationary(coef[1:]):
            continue
        aicc = _aicc(sse, size, p + 2)
        if best is None or aicc < best[0]:
            best = (aicc, p)
    p = best[1] if best is not None else 0
    coef, _, _ = _ar_fit(d, p, p)
    if p and not _stationary(coef[1:]):  # refitted on more data, the order may no longer be stationary
        coef, _, _ = _ar_fit(d, 0, 0)
    f = float(y[-1]) + np.cumsum(_ar_path(d, coef, h))
    return f if bool(np.all(np.isfinite(f))) else None


def ar(y: Array, h: int) -> Array | None:
    """ARIMA(p,0,0): an autoregression of the values on their own last p values around a mean.

    For series that return to a level (a rate, a share); p from 1 to 3 by AICc on a common sample, least
    squares, stationary orders only. None when no order is stationary.
    """
    if len(y) < MIN_POINTS_ETS + MAX_AR_ORDER + 1:
        return None
    best: tuple[float, Array] | None = None
    for p in range(1, MAX_AR_ORDER + 1):
        coef, sse, size = _ar_fit(y, p, MAX_AR_ORDER)
        if not _stationary(coef[1:]):
            continue
        aicc = _aicc(sse, size, p + 2)
        if best is None or aicc < best[0]:
            best = (aicc, coef)
    if best is None:
        return None
    p = len(best[1]) - 1
    coef, _, _ = _ar_fit(y, p, p)  # refitted on all the values it can use, as arima() does
    if not _stationary(coef[1:]):
        coef = best[1]
    f = _ar_path(y, coef, h)
    return f if bool(np.all(np.isfinite(f))) else None


def _aicc(sse: float, size: int, k: int) -> float:
    """AICc of a least-squares fit with k parameters (the variance counted)."""
    return size * math.log(max(sse / size, 1e-300)) + 2 * k + 2 * k * (k + 1) / max(size - k - 1, 1)


def _ar_path(x: Array, coef: Array, h: int) -> Array:
    """The next h values of x_t = c + sum_j a_j x_(t-j), from x's last values."""
    p = len(coef) - 1
    recent = [float(v) for v in x[len(x) - p :]] if p else []
    out = []
    for _ in range(h):
        value = float(coef[0]) + sum(float(coef[j]) * recent[-j] for j in range(1, p + 1))
        out.append(value)
        recent.append(value)
    return np.asarray(out, dtype=np.float64)


def _ar_fit(d: Array, p: int, start: int) -> tuple[Array, float, int]:
    """Least squares of d_t on (1, d_(t-1), ..., d_(t-p)) for t >= start: coefficients, SSE, sample size."""
    n = len(d)
    x = np.column_stack([np.ones(n - start), *(d[start - j : n - j] for j in range(1, p + 1))])
    coef = np.asarray(np.linalg.lstsq(x, d[start:], rcond=None)[0], dtype=np.float64)
    return coef, float(np.sum(np.square(d[start:] - x @ coef))), n - start


def _stationary(ar: Array) -> bool:
    """Whether the autoregression x_t = sum ar_j x_(t-j) is stationary: its companion matrix's roots inside 1."""
    companion = np.zeros((len(ar), len(ar)))
    companion[0] = ar
    companion[1:, :-1] = np.eye(len(ar) - 1)
    return bool(np.max(np.abs(np.linalg.eigvals(companion))) < 1 - 1e-6)


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
