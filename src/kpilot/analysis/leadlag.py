"""Lead–lag discovery: which metrics lead which, by how many periods, and by how much.

Pure functions over aligned series (same periods, NaN = no value). For every (leader, follower) pair:

1. the span both have values on is kept (interior gaps are filled linearly), each series is detrended
   (a linear trend, plus Fourier seasonality when `season` is given and the span holds two seasons);
2. each detrended series is pre-whitened by its own AR(p) filter, p <= 6 chosen by AIC, so that under
   "no relation" the cross-correlations are independent with variance ~1/N (double pre-whitening); the
   whitened values are then winsorized at 3 robust standard deviations, so that one shock in each series
   (a paused campaign, a week of mass churn) cannot line up into a lead on its own;
3. the cross-correlation r_k of the whitened follower with the whitened leader k periods earlier is
   computed for k = 0..max_lag; the test statistic is the largest |sum of r_k| over windows of WINDOW
   consecutive lags in 1..max_lag (a sales cycle spreads an effect over several periods), its p-value
   Bonferroni-corrected for the number of windows; the best lag is the strongest lag of that window;
4. p-values are adjusted over all pairs tested (Benjamini–Hochberg); a pair is an edge when its adjusted
   p-value is <= alpha. Lag 0 is never an edge: a leading indicator must lead.

Pairs of different grains are tested in one family with `pair_tests_across`: each `PairSet` holds series
aligned at one grain, and an edge's lag is counted in the periods of its set's grain (`LeadLagEdge.grain`).

Alongside: a Granger F test (bivariate VAR(max_lag) on the whitened pair, as statsmodels'
VARResults.test_causality(kind='f'); a second opinion, not used to select edges), the effect of a
+10 % change of the leader, and a stability check on the two halves of the span.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import special  # the distributions' functions, without scipy.stats' import time

from kpilot.model.errors import KpilotError, msg
from kpilot.model.periods import Grain

Array = NDArray[np.float64]
IntArray = NDArray[np.intp]

WINDOW = 3  # consecutive lags summed by the test
AR_MAX = 6  # highest order of the pre-whitening filters
MIN_PERIODS = 30  # fewest periods a pair needs on top of max_lag and the AR filter's warm-up
STABILITY_TOLERANCE = 2  # a half's best lag may differ from the full span's by this many periods
FOURIER_HARMONICS = 3  # seasonal terms removed when `season` is given
EFFECT_CHANGE = 10.0  # the effect is given for a change of the leader by this many percent
ROBUST_CLIP = 3.0  # whitened values are pulled back to within this many robust standard deviations
KPSS_CRITICAL = 0.146  # 5 % critical value of the KPSS test of trend stationarity (Kwiatkowski et al. 1992)


class EdgeLike(Protocol):
    """What the audit and the early warnings need of an edge (a LeadLagEdge, or one stored or made by hand):
    `leader` moves `lag` periods before `follower`."""

    @property
    def leader(self) -> str: ...
    @property
    def follower(self) -> str: ...
    @property
    def lag(self) -> int: ...
    @property
    def correlation(self) -> float: ...
    @property
    def p_value(self) -> float: ...


@dataclass(frozen=True)
class LeadLagEdge:
    """A measured lead: `leader` moves first, `follower` moves `lag` periods later.

    `correlation` is the cross-correlation of the pre-whitened series at `lag`; `p_value` is adjusted
    for the number of pairs tested (Benjamini–Hochberg; `p_raw` before); `effect` is the percent
    change of the follower, summed over the lag window, for a +10 % change of the leader (elasticity
    of levels at their means; NaN when a mean is not positive); `n` is the number of periods the pair
    has in common; `stable` says whether both halves of the span agree (same sign, best lag within
    ±2 periods). `lag`, `n` and `window` count periods of `grain`, the grain the pair was tested at
    (the leader's when a coarser follower was computed at it); None when the caller gave no grain.
    """

    leader: str
    follower: str
    lag: int
    correlation: float
    p_value: float
    effect: float
    n: int
    stable: bool
    p_raw: float = math.nan
    window: tuple[int, int] = (0, 0)  # first and last lag of the window the test retained
    granger_f: float = math.nan
    granger_p: float = math.nan
    granger_lags: int = 0
    grain: Grain | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "leader": self.leader,
            "follower": self.follower,
            "lag": self.lag,
            "correlation": _json(self.correlation),
            "p_value": _json(self.p_value),
            "effect": _json(self.effect),
            "n": self.n,
            "stable": self.stable,
            "p_raw": _json(self.p_raw),
            "window": [self.window[0], self.window[1]],
            "granger_f": _json(self.granger_f),
            "granger_p": _json(self.granger_p),
            "granger_lags": self.granger_lags,
            "grain": self.grain.value if self.grain is not None else None,
        }


@dataclass(frozen=True)
class PairTest:
    """One (leader, follower) pair: its estimates when it could be tested, else why not."""

    leader: str
    follower: str
    edge: LeadLagEdge | None
    significant: bool
    reason: str = ""  # a Message when the pair was not tested

    def to_dict(self) -> dict[str, object]:
        base: dict[str, object] = self.edge.to_dict() if self.edge else {"leader": self.leader,
                                                                         "follower": self.follower}
        base["significant"] = self.significant
        base["reason"] = str(self.reason) or None
        return base


@dataclass(frozen=True)
class GrangerResult:
    """Wald F test that some columns do not Granger-cause another, as statsmodels reports it."""

    statistic: float
    df: tuple[int, int]
    p_value: float
    lags: int
    nobs: int

    def to_dict(self) -> dict[str, object]:
        return {"statistic": _json(self.statistic), "df": [self.df[0], self.df[1]], "p_value": _json(self.p_value),
                "lags": self.lags, "nobs": self.nobs}


def _json(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


# --- Granger causality ---------------------------------------------------------------------------

def granger_causality(data: NDArray[np.float64] | Sequence[Sequence[float]], caused: int, causing: Sequence[int],
                      lags: int) -> GrangerResult:
    """VAR(`lags`) with a constant on the columns of `data` (n x k); F test that `causing` do not Granger-cause
    `caused`, as statsmodels VARResults.test_causality(kind='f').

    Like statsmodels, the denominator degrees of freedom are k x (nobs - 1 - k x lags): the Wald statistic
    divided by the number of restrictions, with the VAR's residual covariance. Rows must have no NaN.
    """
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2:
        raise KpilotError(msg("data must be a table of n rows and k columns, got {ndim} dimension(s)", ndim=x.ndim))
    n, k = x.shape
    causing = list(dict.fromkeys(int(c) for c in causing))
    if not causing or caused in causing or not all(0 <= c < k for c in [caused, *causing]):
        raise KpilotError(msg("columns must be distinct and between 0 and {last}: caused {caused}, causing {causing}",
                             last=k - 1, caused=caused, causing=causing))
    if lags < 1:
        raise KpilotError(msg("lags must be at least 1, got {lags}", lags=lags))
    nobs = n - lags
    params = 1 + k * lags
    if nobs - params < 1:
        raise KpilotError(msg("{n} rows are too few for a VAR({lags}) on {k} series", n=n, lags=lags, k=k))
    if not np.isfinite(x).all():
        raise KpilotError(msg("data holds missing or infinite values"))
    y = x[lags:, caused]
    cols = [np.ones(nobs)] + [x[lags - j: n - j, i] for j in range(1, lags + 1) for i in range(k)]
    z = np.column_stack(cols)
    keep = [0] + [1 + (j - 1) * k + i for j in range(1, lags + 1) for i in range(k) if i not in causing]
    rss_u = _rss(z, y)
    rss_r = _rss(z[:, keep], y)
    restrictions = len(causing) * lags
    df_resid = nobs - params
    f = ((rss_r - rss_u) / restrictions) / (rss_u / df_resid)
    df = (restrictions, k * df_resid)
    return GrangerResult(float(f), df, float(special.fdtrc(df[0], df[1], f)), lags, nobs)


def _rss(z: Array, y: Array) -> float:
    beta = np.linalg.lstsq(z, y, rcond=None)[0]
    r = y - z @ beta
    return float(r @ r)


# --- discovery -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairSet:
    """(leader, follower) pairs tested on one set of series aligned on the same contiguous periods.

    `series` as for `discover`; `grain` is the grain of those periods, the unit of the edges' lags (kept on
    each edge; None when unknown). Pairs with leader == follower are skipped.
    """

    series: Mapping[str, Sequence[float] | NDArray[np.float64]]
    pairs: Sequence[tuple[str, str]]
    max_lag: int = 12
    season: int | None = None
    grain: Grain | None = None


def discover(series: Mapping[str, Sequence[float] | NDArray[np.float64]], leaders: Sequence[str],
             followers: Sequence[str], *, max_lag: int = 12, season: int | None = None,
             alpha: float = 0.05) -> list[LeadLagEdge]:
    """The significant lead–lag edges from `leaders` to `followers`, strongest first.

    All series cover the same contiguous periods (same length; NaN = no value, e.g. before a metric
    starts; drop an incomplete last period first). `season` = periods per year (52 weekly, 12 monthly)
    or None. An edge's `lag` is in periods of the series (1..max_lag); a pair leader == follower is
    skipped. Significance is after the Benjamini–Hochberg correction over all pairs tested.
    """
    return discover_across([PairSet(series, _pairs(leaders, followers), max_lag, season)], alpha=alpha)


def discover_across(sets: Sequence[PairSet], *, alpha: float = 0.05) -> list[LeadLagEdge]:
    """The significant edges of several pair sets (e.g. one per grain) corrected as one family, strongest first."""
    tests = pair_tests_across(sets, alpha=alpha)
    edges = [t.edge for t in tests if t.significant and t.edge is not None]
    return sorted(edges, key=lambda e: (e.p_value, e.p_raw, -abs(e.correlation), e.leader, e.follower))


def pair_tests(series: Mapping[str, Sequence[float] | NDArray[np.float64]], leaders: Sequence[str],
               followers: Sequence[str], *, max_lag: int = 12, season: int | None = None,
               alpha: float = 0.05) -> list[PairTest]:
    """Every (leader, follower) pair with its estimates, raw and adjusted p-values (the `--all` view).

    Pairs that cannot be tested (too short, constant) carry a reason and no edge; they do not count in
    the multiple-testing correction. Same arguments as `discover`; order: leaders, then followers.
    """
    return pair_tests_across([PairSet(series, _pairs(leaders, followers), max_lag, season)], alpha=alpha)


def pair_tests_across(sets: Sequence[PairSet], *, alpha: float = 0.05) -> list[PairTest]:
    """Every pair of every set, in order, with p-values adjusted (Benjamini–Hochberg) over all of them.

    One family of tests whatever the sets' grains: a follower tested against leaders of several grains,
    or several followers, cost the same correction as if all were at one grain.
    """
    if not 0 < alpha < 1:
        raise KpilotError(msg("alpha must be between 0 and 1, got {alpha}", alpha=alpha))
    found = [_tested(s) for s in sets]
    order = [(i, pair) for i, (raw, _) in enumerate(found) for pair in raw]
    adjusted = _benjamini_hochberg([found[i][0][pair].p_raw for i, pair in order])
    final = {(i, pair): replace(found[i][0][pair], p_value=q, grain=sets[i].grain)
             for (i, pair), q in zip(order, adjusted, strict=True)}
    out: list[PairTest] = []
    for i, s in enumerate(sets):
        for ld, fw in dict.fromkeys(s.pairs):
            if ld == fw:
                continue
            edge = final.get((i, (ld, fw)))
            out.append(PairTest(ld, fw, edge, edge is not None and edge.p_value <= alpha,
                                found[i][1].get((ld, fw), "")))
    return out


def _pairs(leaders: Sequence[str], followers: Sequence[str]) -> list[tuple[str, str]]:
    return [(ld, fw) for ld in dict.fromkeys(leaders) for fw in dict.fromkeys(followers) if ld != fw]


def _tested(s: PairSet) -> tuple[dict[tuple[str, str], LeadLagEdge], dict[tuple[str, str], str]]:
    """Unadjusted estimates of a set's testable pairs, and why the others could not be tested."""
    max_lag = s.max_lag
    if max_lag < 1:
        raise KpilotError(msg("max_lag must be at least 1, got {max_lag}", max_lag=max_lag))
    pairs = [(ld, fw) for ld, fw in dict.fromkeys(s.pairs) if ld != fw]
    arrays = _arrays(s.series, [n for pair in pairs for n in pair])
    need = MIN_PERIODS + max_lag + AR_MAX
    spans = {name: _span(a) for name, a in arrays.items()}
    groups: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    reasons: dict[tuple[str, str], str] = {}
    for ld, fw in pairs:
        sl, sf = spans[ld], spans[fw]
        start, end = max(sl[0], sf[0]), min(sl[1], sf[1])
        if end - start + 1 < need:
            reasons[(ld, fw)] = msg("too few periods in common ({n}, need {need})", n=max(0, end - start + 1),
                                    need=need)
        else:
            groups[(start, end)].append((ld, fw))
    raw: dict[tuple[str, str], LeadLagEdge] = {}
    for (start, end), group in groups.items():
        names = list(dict.fromkeys([n for pair in group for n in pair]))
        values = np.vstack([_filled(arrays[n][start: end + 1]) for n in names])
        flat = np.ptp(values, axis=1) <= 1e-12 * np.maximum(1.0, np.abs(values).max(axis=1))
        for ld, fw in group:
            if flat[names.index(ld)] or flat[names.index(fw)]:
                reasons[(ld, fw)] = msg("{name} is constant over the periods in common",
                                        name=ld if flat[names.index(ld)] else fw)
        ok = [(ld, fw) for ld, fw in group if (ld, fw) not in reasons]
        if ok:
            raw.update(_estimate(names, values, ok, max_lag, s.season))
    return {pair: raw[pair] for pair in pairs if pair in raw}, reasons


def _arrays(series: Mapping[str, Sequence[float] | NDArray[np.float64]], names: Sequence[str]) -> dict[str, Array]:
    out: dict[str, Array] = {}
    length: int | None = None
    for name in dict.fromkeys(names):
        if name not in series:
            raise KpilotError(msg("no series named {name}", name=name))
        a = np.asarray(series[name], dtype=np.float64).ravel()
        a = np.where(np.isfinite(a), a, np.nan)
        if length is None:
            length = len(a)
        elif len(a) != length:
            raise KpilotError(msg("series {name} has {n} values, expected {expected}: all series must cover the "
                                 "same periods", name=name, n=len(a), expected=length))
        out[name] = a
    return out


def _span(a: Array) -> tuple[int, int]:
    idx = np.flatnonzero(np.isfinite(a))
    return (int(idx[0]), int(idx[-1])) if len(idx) else (0, -1)


def _filled(a: Array) -> Array:
    """Interior gaps filled linearly (the span starts and ends with values)."""
    ok = np.isfinite(a)
    if ok.all():
        return a
    t = np.arange(len(a), dtype=np.float64)
    return np.interp(t, t[ok], a[ok])


def _detrend(values: Array, season: int | None) -> Array:
    """Each row minus its least-squares linear trend (and Fourier seasonality with two seasons of data)."""
    n = values.shape[1]
    t = np.linspace(-1.0, 1.0, n)
    cols = [np.ones(n), t]
    if season and season >= 2 and n >= 2 * season:
        for h in range(1, min(FOURIER_HARMONICS, season // 2) + 1):
            angle = 2 * np.pi * h * np.arange(n) / season
            cols += [np.sin(angle), np.cos(angle)]
    x = np.column_stack(cols)
    beta = np.linalg.lstsq(x, values.T, rcond=None)[0]
    out: Array = values - (x @ beta).T
    return out


def kpss(d: Array) -> Array:
    """KPSS statistic of each row against trend stationarity (above KPSS_CRITICAL: a unit root at 5 %).

    Residuals u of a linear trend, partial sums S; eta = sum(S^2) / (n^2 x long-run variance of u), the
    long-run variance with Bartlett weights up to lag floor(4 (n/100)^(1/4)) (Schwert's short rule, as R's
    tseries::kpss.test with lshort=TRUE).
    """
    n = d.shape[1]
    t = np.linspace(-1.0, 1.0, n)
    x = np.column_stack([np.ones(n), t])
    u = d - (x @ np.linalg.lstsq(x, d.T, rcond=None)[0]).T
    partial = u.cumsum(axis=1)
    long_run = (u * u).sum(axis=1) / n
    lags = int(4 * (n / 100) ** 0.25)
    for j in range(1, min(lags, n - 1) + 1):
        long_run += 2 * (1 - j / (lags + 1)) * (u[:, j:] * u[:, :-j]).sum(axis=1) / n
    out: Array = (partial * partial).sum(axis=1) / (n * n * np.maximum(long_run, 1e-300))
    return out


def _differenced(d: Array) -> Array:
    """Rows with a unit root (KPSS) as their period-to-period changes (centred; the first period, which has no
    change, at their mean), the others as they are.

    An AR fit underestimates a unit root on a few years of data (the Dickey–Fuller bias): the whitened series
    would keep a trace of its random walk, and two independent walks would then look related a little too often.
    """
    unit = kpss(d) > KPSS_CRITICAL
    out = d.copy()
    if unit.any():
        changes = np.diff(d[unit], axis=1)
        changes -= changes.mean(axis=1, keepdims=True)
        out[unit] = np.concatenate([np.zeros((len(changes), 1)), changes], axis=1)
    return out


def _whiten(d: Array, pmax: int) -> Array:
    """Residuals of each row's AR(p) fit, p in 0..pmax chosen by AIC on the common sample t >= pmax."""
    m, n = d.shape
    big_n = n - pmax
    y = d[:, pmax:]
    best_aic = np.full(m, np.inf)
    best = np.zeros((m, big_n))
    for p in range(pmax + 1):
        if p == 0:
            resid = y - y.mean(axis=1, keepdims=True)
        else:
            lagged = np.stack([d[:, pmax - j: n - j] for j in range(1, p + 1)], axis=2)  # m x N x p
            z = np.concatenate([np.ones((m, big_n, 1)), lagged], axis=2)
            beta = _solve(np.einsum("mtk,mtl->mkl", z, z), np.einsum("mtk,mt->mk", z, y))
            resid = y - np.einsum("mtk,mk->mt", z, beta)
        rss = np.maximum((resid * resid).sum(axis=1), 1e-300)
        aic = big_n * np.log(rss / big_n) + 2 * (p + 1)
        better = aic < best_aic - 1e-9
        best_aic = np.where(better, aic, best_aic)
        best[better] = resid[better]
    return best


def _winsorize(e: Array) -> Array:
    """Each row with its values pulled back to within ROBUST_CLIP robust standard deviations of its median.

    The robust standard deviation is 1.4826 x the median absolute deviation (the standard deviation when more
    than half the values are equal). The cross-correlation of two whitened series is a sum of products: one
    shock in each, a few periods apart, would otherwise dominate it, and its normal p-value would be far too
    small. Values within the bound (99.7 % of them for normal noise) are left as they are.
    """
    med = np.median(e, axis=1, keepdims=True)
    scale = 1.4826 * np.median(np.abs(e - med), axis=1, keepdims=True)
    sd = e.std(axis=1, keepdims=True)
    scale = np.where(scale > 1e-9 * sd, scale, sd)
    bound = ROBUST_CLIP * scale
    out: Array = med + np.clip(e - med, -bound, bound)
    return out


def _solve(a: Array, b: Array) -> Array:
    """Batched a x = b, least squares where a system is singular."""
    try:
        out = np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.einsum("...kl,...l->...k", np.linalg.pinv(a), b)
    return np.asarray(out, dtype=np.float64)


def _ccf(e: Array, max_lag: int) -> Array:
    """r[k, i, j]: correlation of row j at t with row i at t - k, k = 0..max_lag (the usual 1/N estimator)."""
    big_n = e.shape[1]
    c = e - e.mean(axis=1, keepdims=True)
    sd = np.sqrt((c * c).mean(axis=1))
    z = c / np.where(sd > 0, sd, 1.0)[:, None]
    return np.stack([z[:, : big_n - k] @ z[:, k:].T / big_n for k in range(max_lag + 1)])


def _windows(r: Array, big_n: int, width: int) -> tuple[Array, Array]:
    """Window sums of r[1..L] over `width` consecutive lags and their z-scores under no relation."""
    max_lag = r.shape[0] - 1
    starts = range(1, max_lag - width + 2)
    sums = np.stack([r[s: s + width].sum(axis=0) for s in starts])
    var = np.array([sum((big_n - k) / big_n**2 for k in range(s, s + width)) for s in starts])
    return sums, sums / np.sqrt(var)[:, None, None]


def _estimate(names: list[str], values: Array, pairs: list[tuple[str, str]], max_lag: int,
              season: int | None) -> dict[tuple[str, str], LeadLagEdge]:
    """Unadjusted estimates of pairs sharing one span; `values` holds the rows of `names` over it."""
    n = values.shape[1]
    pmax = min(AR_MAX, n // 10)
    d = _detrend(values, season)
    e = _winsorize(_whiten(_differenced(d), pmax))
    big_n = e.shape[1]
    width = min(WINDOW, max_lag)
    r = _ccf(e, max_lag)
    sums, z = _windows(r, big_n, width)
    index = {name: i for i, name in enumerate(names)}
    li = np.array([index[a] for a, _ in pairs], dtype=np.intp)
    fi = np.array([index[b] for _, b in pairs], dtype=np.intp)
    zp = z[:, li, fi]  # windows x pairs
    best_w = np.abs(zp).argmax(axis=0)
    cols = np.arange(len(pairs))
    zbest = zp[best_w, cols]
    n_windows = zp.shape[0]
    p_raw = np.minimum(1.0, n_windows * 2 * special.ndtr(-np.abs(zbest)))
    sign = np.where(sums[best_w, li, fi] >= 0, 1.0, -1.0)
    rp = r[:, li, fi]  # lags x pairs
    within = np.arange(width)[:, None] + 1 + best_w[None, :]  # lags of the window
    lag = within[(sign * rp[within, cols]).argmax(axis=0), cols]
    stable = _stability(e, li, fi, best_w, sign, max_lag, width)
    effect = _effect(values, d, li, fi, best_w + 1, width)
    gf, gp = _granger_pairs(e, li, fi, np.full(len(pairs), max_lag, dtype=np.intp))
    out: dict[tuple[str, str], LeadLagEdge] = {}
    for c, (ld, fw) in enumerate(pairs):
        lo = int(best_w[c]) + 1
        out[(ld, fw)] = LeadLagEdge(ld, fw, int(lag[c]), float(rp[lag[c], c]), float(p_raw[c]), float(effect[c]), n,
                                    bool(stable[c]), float(p_raw[c]), (lo, lo + width - 1), float(gf[c]),
                                    float(gp[c]), max_lag)
    return out


def _stability(e: Array, li: IntArray, fi: IntArray, first: IntArray, sign: Array, max_lag: int,
               width: int) -> NDArray[np.bool_]:
    """In both halves of the span: the full span's window leans the same way, and the half's own best
    window (in that direction) starts within ±STABILITY_TOLERANCE periods of the full span's."""
    big_n = e.shape[1]
    half = big_n // 2
    if half <= max_lag + 2:
        return np.zeros(len(li), dtype=bool)
    cols = np.arange(len(li))
    ok = np.ones(len(li), dtype=bool)
    for part in (e[:, :half], e[:, half:]):
        sums, _ = _windows(_ccf(part, max_lag), part.shape[1], width)
        signed = sign * sums[:, li, fi]  # windows x pairs
        best = signed.argmax(axis=0)
        ok &= (signed[first, cols] > 0) & (np.abs(best - first) <= STABILITY_TOLERANCE)
    return ok


def _effect(values: Array, d: Array, li: IntArray, fi: IntArray, first: IntArray, width: int) -> Array:
    """Percent change of the follower for +EFFECT_CHANGE % of the leader: the sum of the coefficients of a
    regression of the detrended follower on the detrended leader at the window's lags, times mean(leader) /
    mean(follower) (an elasticity of levels at their means); NaN when a mean is not positive."""
    n = d.shape[1]
    total = np.zeros(len(li))
    for s in np.unique(first):
        sel = np.flatnonzero(first == s)
        last = int(s) + width - 1
        lagged = np.stack([d[:, last - j: n - j] for j in range(int(s), last + 1)], axis=2)  # m x T x w
        lagged = lagged - lagged.mean(axis=1, keepdims=True)
        y = d[:, last:] - d[:, last:].mean(axis=1, keepdims=True)
        gram = np.einsum("mtk,mtl->mkl", lagged, lagged)[li[sel]]
        cross = np.einsum("ptk,pt->pk", lagged[li[sel]], y[fi[sel]])
        total[sel] = _solve(gram, cross).sum(axis=1)
    mean = values.mean(axis=1)
    ml, mf = mean[li], mean[fi]
    with np.errstate(divide="ignore", invalid="ignore"):
        out: Array = np.where((ml > 0) & (mf > 0), EFFECT_CHANGE * total * ml / mf, np.nan)
    return out


def _granger_pairs(e: Array, li: IntArray, fi: IntArray, orders: IntArray) -> tuple[Array, Array]:
    """Bivariate Granger F tests (leader -> follower) on the whitened rows, one VAR order per pair, batched.

    The follower's equation by Frisch–Waugh: the gain of the leader's lags once the constant and the
    follower's own lags are projected out; F and degrees of freedom as `granger_causality`."""
    m, big_n = e.shape
    f_out = np.full(len(li), np.nan)
    p_out = np.full(len(li), np.nan)
    for p in np.unique(orders):
        p = int(p)
        rows = big_n - p
        df_resid = rows - 1 - 2 * p
        if df_resid < 1:
            continue
        sel = np.flatnonzero(orders == p)
        y = e[:, p:]  # m x T
        lagged = np.stack([e[:, p - j: big_n - j] for j in range(1, p + 1)], axis=2)  # m x T x p
        own = np.concatenate([np.ones((m, rows, 1)), lagged], axis=2)
        q, _ = np.linalg.qr(own)  # m x T x (p+1)
        ey = y - np.einsum("mtk,mk->mt", q, np.einsum("mtk,mt->mk", q, y))
        rss_r = (ey * ey).sum(axis=1)
        lx = lagged[li[sel]]  # P x T x p
        proj = np.einsum("ptk,ptl->pkl", q[fi[sel]], lx)  # P x (p+1) x p
        gram = np.einsum("ptk,ptl->pkl", lx, lx) - np.einsum("pjk,pjl->pkl", proj, proj)
        cross = np.einsum("ptk,pt->pk", lx, ey[fi[sel]])
        gain = np.einsum("pk,pk->p", cross, _solve(gram, cross))
        rss_u = np.maximum(rss_r[fi[sel]] - gain, 1e-300)
        f = (gain / p) / (rss_u / df_resid)
        f_out[sel] = f
        p_out[sel] = special.fdtrc(p, 2 * df_resid, f)
    return f_out, p_out


def _benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values, in the order given."""
    if not p:
        return []
    a = np.asarray(p, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    m = len(a)
    scaled = a[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(x) for x in out]
