"""Forecasts on series with known answers: planted trends, seasons and leaders; M4 scoring by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kpilot.analysis.forecast import (
    COMBINATION,
    SHORT_HISTORY,
    Forecast,
    ForecastPoint,
    Leader,
    forecast,
    probability_of_target,
)
from kpilot.analysis.forecast_models import is_seasonal, mase, mase_scale, smape

# -- M4 scoring ------------------------------------------------------------------------------------------------

def test_smape_by_hand() -> None:
    # 200*|100-110|/210 = 9.5238..., 200*|50-40|/90 = 22.222...; mean 15.873
    assert smape([100, 50], [110, 40]) == pytest.approx((2000 / 210 + 2000 / 90) / 2)
    assert smape([0, 10], [0, 10]) == 0.0


def test_mase_scale_is_mean_one_step_change() -> None:
    insample = [10.0, 12.0, 11.0, 15.0]  # changes 2, 1, 4 -> scale 7/3
    assert mase_scale(insample) == pytest.approx(7 / 3)
    # forecast errors 1 and 3 -> MAE 2 -> MASE 2 / (7/3)
    assert mase(insample, [16.0, 18.0], [15.0, 15.0]) == pytest.approx(6 / 7)


def test_naive2_scores_on_m4_style_weekly_series() -> None:
    # Weekly M4 data is scored with m = 1, so Naive2 is the last value repeated. Two tiny series by hand.
    train = [np.array([1.0, 2.0, 4.0]), np.array([10.0, 10.0, 12.0, 11.0])]
    test = [np.array([5.0, 3.0]), np.array([11.0, 13.0])]
    fc = [np.full(2, t[-1]) for t in train]
    s = np.mean([smape(a, f) for a, f in zip(test, fc, strict=True)])
    m = np.mean([mase(tr, a, f) for tr, a, f in zip(train, test, fc, strict=True)])
    s1 = (200 * 1 / 9 + 200 * 1 / 7) / 2
    s2 = (0 + 200 * 2 / 24) / 2
    assert s == pytest.approx((s1 + s2) / 2)
    assert m == pytest.approx((1.0 / 1.5 + 1.0 / 1.0) / 2)


# -- known answers ------------------------------------------------------------------------------------------

def test_linear_trend_is_extrapolated() -> None:
    y = 50.0 + 3.0 * np.arange(40)
    fc = forecast(y, 2)
    assert fc.method == "drift"
    assert [p.value for p in fc.points] == pytest.approx([50 + 3 * 40, 50 + 3 * 41])
    assert fc.error == pytest.approx(0.0, abs=1e-9)


def test_pure_seasonal_series_is_forecast_by_seasonal_naive() -> None:
    pattern = np.array([10.0, 14.0, 9.0, 20.0, 25.0, 12.0, 8.0])
    y = np.tile(pattern, 8)  # 56 points, ends on a full cycle
    fc = forecast(y, 3, season=7)
    assert fc.method == "seasonal_naive"
    assert [p.value for p in fc.points] == [10.0, 14.0, 9.0]
    assert fc.backtest["seasonal_naive"] == 0.0


def test_follower_of_a_leader_is_forecast_by_distributed_lag() -> None:
    rng = np.random.default_rng(7)
    n, lag = 80, 3
    leader = 100 + np.cumsum(rng.normal(0, 5, n))
    follower = np.full(n, np.nan)
    follower[lag:] = 2 * leader[:-lag] + rng.normal(0, 2, n - lag)
    fc = forecast(follower, 3, leaders=[Leader(leader, lag)])  # the leading NaN are dropped
    # The others' backtest errors are more than twice the regression's: it is used alone.
    assert fc.backtest["distributed_lag"] < 0.5 * min(v for k, v in fc.backtest.items() if k != "distributed_lag")
    assert fc.method == "distributed_lag" and fc.weights == {"distributed_lag": 1.0}
    expected = 2 * leader[n - lag : n]  # steps 1..3 respond to the last 3 known leader values
    assert [p.value for p in fc.points] == pytest.approx(expected, abs=8)
    assert all(p.lower < e < p.upper for p, e in zip(fc.points, expected, strict=True))


def test_known_future_leader_values_are_used() -> None:
    rng = np.random.default_rng(3)
    n = 60
    leader = 50 + np.cumsum(rng.normal(0, 3, n + 2))  # two periods known past the history
    follower = 3 * leader[:n] + rng.normal(0, 1, n)  # lag 0: needs the leader's own future
    fc = forecast(follower, 2, leaders=[Leader(leader, 0)], methods=["naive", "distributed_lag"])
    assert fc.method == "distributed_lag"
    assert [p.value for p in fc.points] == pytest.approx(3 * leader[n:], abs=4)


def test_seasonality_test_finds_a_planted_season() -> None:
    rng = np.random.default_rng(1)
    pattern = rng.normal(0, 10, 52)  # a jagged yearly profile (the M4 test is weak on smooth ones)
    assert is_seasonal(100 + np.tile(pattern, 3) + rng.normal(0, 2, 156), 52)
    assert not is_seasonal(100 + rng.normal(0, 2, 156), 52)


def test_seasonal_models_reseasonalize() -> None:
    # A trend times a yearly pattern: the adjusted models must put the pattern back in their forecasts.
    rng = np.random.default_rng(5)
    t = np.arange(60)
    y = (100 + t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) * (1 + rng.normal(0, 0.01, 60))
    fc = forecast(y, 6, season=12, methods=["ets_damped"])
    truth = (100 + np.arange(60, 66)) * (1 + 0.3 * np.sin(2 * np.pi * np.arange(60, 66) / 12))
    assert [p.value for p in fc.points] == pytest.approx(truth, rel=0.05)


# -- data edge cases ----------------------------------------------------------------------------------------

def test_short_history_falls_back_to_naive_with_wide_interval() -> None:
    y = [100.0, 104.0, 98.0, 103.0, 107.0, 101.0, 99.0, 105.0]
    fc = forecast(y, 2)
    assert fc.method == SHORT_HISTORY
    assert [p.value for p in fc.points] == [105.0, 105.0]
    rms = math.sqrt(float(np.mean(np.diff(y) ** 2)))  # 4.91: the typical week-to-week change
    p1, p2 = fc.points
    assert p1.upper - p1.value == pytest.approx(1.4398 * rms, rel=1e-4)  # Student quantile 0.9, 6 d.f.
    assert (p2.upper - p2.lower) == pytest.approx((p1.upper - p1.lower) * math.sqrt(2))
    assert "Only 8 periods" in fc.notes[0]
    assert fc.to_dict()["error"] is None
    ev = fc.evidence()  # nothing measured: the doors say so rather than show numbers
    assert (ev["relative_error"], ev["coverage"], ev["coverage_points"], ev["baseline"]) == (None, None, 0, None)


def test_window_keeps_the_last_periods() -> None:
    # An old regime (a steep fall) then a flat level: with a window on the flat part, drift sees no slope.
    y = np.r_[np.linspace(500, 100, 50), np.full(30, 100.0)]
    fc = forecast(y, 2, window=30, methods=["drift"])
    assert [p.value for p in fc.points] == pytest.approx([100.0, 100.0])
    assert forecast(y, 2, methods=["drift"]).points[0].value < 96


def test_nan_handling() -> None:
    rng = np.random.default_rng(2)
    y = 100 + np.cumsum(rng.normal(0, 1, 40))
    base = forecast(y, 2, methods=["naive", "drift"])
    lead = forecast(np.r_[np.nan, np.nan, y], 2, methods=["naive", "drift"])
    assert lead.points == base.points and lead.notes == ()
    holes = y.copy()
    holes[[10, 11, 20]] = np.nan
    fc = forecast(holes, 2, methods=["naive", "drift"])
    assert fc.notes == ("3 missing periods inside the history were interpolated.",)
    tail = forecast(np.r_[y, np.nan, np.nan], 2, methods=["naive"])
    assert tail.points[0].value == y[-1]  # step 1 is still the period after the last NaN
    assert tail.notes == ("The last 2 periods of the history have no value: the last known value was carried forward.",)
    with pytest.raises(ValueError, match="no values"):
        forecast([np.nan, np.nan], 2)
    with pytest.raises(ValueError, match="Unknown forecast method"):
        forecast(y, 2, methods=["prophet"])


# -- probability of target and serialization -------------------------------------------------------------

def test_probability_of_target_from_interval() -> None:
    z = 1.2815515655446004  # normal quantile of 0.9: the 80 % interval is value +- z sigma
    p = ForecastPoint(1, 100.0, 100.0 - 10 * z, 100.0 + 10 * z)
    assert probability_of_target(p, 110.0, direction="up") == pytest.approx(0.158655, abs=1e-5)
    assert probability_of_target(p, 110.0, direction="down") == pytest.approx(0.841345, abs=1e-5)
    assert probability_of_target(p, 100.0, direction="up") == pytest.approx(0.5)
    exact = ForecastPoint(1, 100.0, 100.0, 100.0)
    assert probability_of_target(exact, 100.0, direction="up") == 1.0
    assert probability_of_target(exact, 101.0, direction="up") == 0.0
    with pytest.raises(ValueError, match="direction"):
        probability_of_target(p, 1.0, direction="sideways")


def test_to_dict_is_json_ready() -> None:
    rng = np.random.default_rng(4)
    fc = forecast(100 + np.cumsum(rng.normal(0, 1, 50)), 2)
    d = fc.to_dict()
    json.dumps(d, allow_nan=False)
    assert set(d) == {"method", "level", "points", "backtest", "error", "error_metric", "origins", "notes", "weights",
                      "baseline", "baseline_error", "relative_error", "coverage", "coverage_points"}
    assert d["error_metric"] == "MASE" and d["origins"] == 24 and d["level"] == 0.8
    assert set(fc.backtest) == {"naive", "drift", "ses", "ets_damped", "theta", "arima", "ar", COMBINATION}
    assert d["method"] == COMBINATION and d["error"] == fc.backtest[COMBINATION]
    assert sum(fc.weights.values()) == pytest.approx(1.0) and set(fc.weights) <= set(fc.backtest)
    assert isinstance(fc, Forecast) and [p["step"] for p in d["points"]] == [1, 2]


# -- the acme acceptance workspace ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def acme_weekly(acme_dir, tmp_path_factory) -> dict[str, np.ndarray]:
    from kpilot.model.periods import Grain
    from kpilot.service import WorkspaceService

    svc = WorkspaceService(acme_dir, state_dir=tmp_path_factory.mktemp("acme"))
    out = {}
    for key in ("mrr", "won_revenue", "demos_booked"):
        # The data stop on 2026-11-22: later weeks are partial or empty.
        rows = [r for r in svc.series(key, grain=Grain.week) if str(r["period"]) <= "2026-11-16"]
        out[key] = np.array([np.nan if r["value"] is None else r["value"] for r in rows], dtype=float)
    return out


def test_acme_one_week_ahead_intervals_hold_most_outcomes(acme_weekly) -> None:
    # Forecast each of the last 8 complete weeks from the weeks before it, as the product would have.
    hits = total = 0
    for y in acme_weekly.values():
        for cut in range(1, 9):
            fc = forecast(y[:-cut], 1, season=52)
            p = fc.points[0]
            assert fc.error == fc.backtest[fc.method]
            hits += p.lower <= y[-cut] <= p.upper
            total += 1
    assert 0.7 <= hits / total <= 0.95  # 20 of 24 when written


def test_acme_mrr_trend_beats_naive(acme_weekly) -> None:
    fc = forecast(acme_weekly["mrr"], 2, season=52)
    assert max(fc.weights, key=lambda k: fc.weights[k]) in ("drift", "ets_damped", "theta", "arima")
    assert fc.error < 0.8 * fc.backtest["naive"]
    assert fc.points[1].value > fc.points[0].value > acme_weekly["mrr"][-8]  # MRR grows
