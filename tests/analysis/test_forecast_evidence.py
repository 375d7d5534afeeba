"""The forecast's combination, interval and evidence, each recomputed independently: by hand on a tiny series, by
statsmodels for the ARIMA candidates, and against held-out values of many short synthetic series."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from kpilot.analysis.forecast import COMBINATION, forecast
from kpilot.analysis.forecast_backtest import combination_weights
from kpilot.analysis.forecast_models import ar, arima

# A tiny series: 20 periods, a rise with noise. With 2 steps ahead the backtest has 11 full-horizon origins:
# every period from the 9th on is a forecast origin (the models refit on the periods before it).
Y = np.array([10.0, 12.0, 11.0, 14.0, 13.0, 15.0, 17.0, 16.0, 18.0, 21.0,
              19.0, 22.0, 24.0, 23.0, 25.0, 28.0, 26.0, 29.0, 31.0, 30.0])
H = 2
MIN_KNOWN = 4


def _naive(y: np.ndarray, h: int) -> list[float]:
    return [float(y[-1])] * h


def _drift(y: np.ndarray, h: int) -> list[float]:
    slope = (y[-1] - y[0]) / (len(y) - 1)
    return [float(y[-1] + slope * k) for k in range(1, h + 1)]


def _errors(model: Callable[[np.ndarray, int], list[float]], y: np.ndarray) -> list[list[float | None]]:
    """Rows: origins 8..19 (index of the first forecast period); columns: steps 1, 2; None past the history."""
    rows = []
    for o in range(8, len(y)):
        f = model(y[:o], H)
        rows.append([float(y[o + k] - f[k]) if o + k < len(y) else None for k in range(H)])
    return rows


def _mase(rows: list[list[float | None]], scale: float) -> float:
    per_step = []
    for k in range(H):
        col = [abs(r[k]) for r in rows if r[k] is not None]
        per_step.append(sum(col) / len(col))
    return sum(per_step) / H / scale


def _weights(scores: dict[str, float]) -> dict[str, float]:
    best = min(scores.values())
    kept = {k: 1 / v**2 for k, v in scores.items() if v <= 2 * best}
    return {k: v / sum(kept.values()) for k, v in kept.items()}


def _mix(w: dict[str, float], rows: dict[str, list[list[float | None]]]) -> list[list[float | None]]:
    out = []
    for i in range(len(rows["naive"])):
        row: list[float | None] = []
        for k in range(H):
            parts = [(w[m], rows[m][i][k]) for m in w]
            row.append(None if parts[0][1] is None else sum(a * float(e) for a, e in parts if e is not None))
        out.append(row)
    return out


def _half(rows: list[list[float | None]]) -> list[float]:
    out = []
    for k in range(H):
        col = [float(r[k]) for r in rows if r[k] is not None]
        t = stats.t.ppf(0.9, max(1, len(col) - 1))
        out.append(t * math.sqrt(sum(e * e for e in col) / len(col)))
    return [max(out[: k + 1]) for k in range(H)]  # never narrower than at an earlier step


def test_combination_interval_and_evidence_by_hand_on_a_tiny_series() -> None:
    fc = forecast(Y, H, methods=["naive", "drift"])
    scale = float(np.mean(np.abs(np.diff(Y))))
    rows = {"naive": _errors(_naive, Y), "drift": _errors(_drift, Y)}
    scores = {m: _mase(r, scale) for m, r in rows.items()}
    w = _weights(scores)
    assert set(w) == {"naive", "drift"}  # both within twice the better one's error: combined
    mixed = _mix(w, rows)
    value = [w["naive"] * a + w["drift"] * b for a, b in zip(_naive(Y, H), _drift(Y, H), strict=True)]
    half = _half(mixed)

    assert fc.method == COMBINATION and fc.origins == 11
    assert fc.weights == pytest.approx(w)
    assert [p.value for p in fc.points] == pytest.approx(value)
    assert [p.upper - p.value for p in fc.points] == pytest.approx(half)
    assert [p.value - p.lower for p in fc.points] == pytest.approx(half)
    assert fc.backtest["naive"] == pytest.approx(scores["naive"])
    assert fc.backtest["drift"] == pytest.approx(scores["drift"])
    assert fc.error == pytest.approx(_mase(mixed, scale)) and fc.error == fc.backtest[COMBINATION]
    # No season: the yardstick is the naive forecast, backtested on the same origins.
    assert fc.baseline == "naive" and fc.baseline_error == pytest.approx(scores["naive"])
    assert fc.relative_error == pytest.approx(fc.error / scores["naive"])

    # Coverage: each origin with 4 errors known at every step is checked against the interval rebuilt from
    # what was known then (the outcome of origin j at step k is known from origin j + k + 1 on).
    hits = total = 0
    for i in range(H - 1 + MIN_KNOWN, len(mixed)):
        known = {m: [[r[k] if j + k < i else None for k in range(H)] for j, r in enumerate(rs)]
                 for m, rs in rows.items()}
        wi = _weights({m: _mase(known[m], scale) for m in known})
        hi = _half(_mix(wi, known))
        for k, e in enumerate(_mix(wi, rows)[i]):
            if e is not None:
                hits += abs(e) <= hi[k]
                total += 1
    assert total == 13  # origins 13..19: six with both steps known, the last with one
    assert fc.coverage_points == total and fc.coverage == pytest.approx(hits / total)

    d = json.loads(json.dumps(fc.to_dict(), allow_nan=False))
    assert d["relative_error"] == pytest.approx(fc.relative_error) and d["coverage"] == pytest.approx(hits / total)
    assert set(fc.evidence()) == {"level", "error_metric", "error", "baseline", "baseline_error", "relative_error",
                                  "coverage", "coverage_points", "origins", "weights"}


def test_weights_are_inverse_squared_errors_within_twice_the_best() -> None:
    w = combination_weights({"a": 1.0, "b": 2.0, "c": 2.5})
    assert w == pytest.approx({"a": 0.8, "b": 0.2})  # 1 and 1/4, normalised; c is past twice the best
    assert combination_weights({"a": 0.0, "b": 1.0}) == {"a": 1.0}  # an exact fit is used alone


def test_arima_candidates_match_statsmodels_autoreg() -> None:
    from statsmodels.tsa.ar_model import AutoReg

    rng = np.random.default_rng(3)
    e = rng.normal(0, 1, 300)
    changes = np.zeros(300)
    level = np.zeros(300)
    for t in range(1, 300):
        changes[t] = 0.5 + 0.7 * (changes[t - 1] - 0.5) + e[t]
        level[t] = 0.6 * level[t - 1] + e[t]
    y = 100 + np.cumsum(changes)
    # An AR(1) on the changes is what AICc picks among orders 0..3; statsmodels fits it by least squares too.
    expected = y[-1] + np.cumsum(AutoReg(np.diff(y), lags=1, trend="c").fit().forecast(4))
    assert arima(y, 4) == pytest.approx(expected)
    assert ar(50 + level, 3) == pytest.approx(AutoReg(50 + level, lags=1, trend="c").fit().forecast(3))


def _synthetic(kind: int, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n)
    if kind == 0:  # local level + noise
        return 200 + np.cumsum(rng.normal(0, 2, n)) + rng.normal(0, 4, n)
    if kind == 1:  # AR(1) around a fixed level
        e = rng.normal(0, 5, n)
        y = np.empty(n)
        y[0] = 100
        for i in range(1, n):
            y[i] = 100 + 0.6 * (y[i - 1] - 100) + e[i]
        return y
    if kind == 2:  # linear trend + noise
        return 100 + 0.5 * t + rng.normal(0, 3, n)
    return 100 + 15 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 3, n)  # a yearly season in monthly data


def test_interval_coverage_on_held_out_synthetic_series() -> None:
    # 100 short series (40 months) of four kinds; the two months after each are never seen by the forecast.
    rng = np.random.default_rng(11)
    hits = total = 0
    for kind in range(4):
        for _ in range(25):
            y = _synthetic(kind, 42, rng)
            fc = forecast(y[:40], 2, season=12)
            for p, actual in zip(fc.points, y[40:], strict=True):
                hits += p.lower <= actual <= p.upper
                total += 1
    # 200 outcomes: a binomial standard error of 2.8 points around 80 %, more as a series' two outcomes go
    # together; the band is 80 % +- 7 points.
    assert 0.73 <= hits / total <= 0.87, hits / total
