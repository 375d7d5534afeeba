"""Lead–lag discovery: planted lags, independent random walks, statsmodels' Granger reference, and acme."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from kpilot.analysis import leadlag as ll
from kpilot.analysis.leadlag import LeadLagEdge, discover, granger_causality, pair_tests
from kpilot.model.errors import KpilotError

KEYS = ["leader", "follower", "lag", "correlation", "p_value", "effect", "n", "stable"]


def _planted(seed: int, lag: int, b: float = 1.0, n: int = 156, noise: float = 1.0) -> dict[str, np.ndarray]:
    """x: AR(1) around a trend; y = 50 + b * x[t - lag] + noise: y leads nothing, x leads y by `lag`."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(n + lag)
    x = np.empty(n + lag)
    x[0] = u[0]
    for t in range(1, n + lag):
        x[t] = 0.5 * x[t - 1] + u[t]
    x = 100 + 0.05 * np.arange(n + lag) + 3 * x
    y = 50 + b * x[: n] + noise * 3 * rng.standard_normal(n)
    return {"x": x[lag:], "y": y, "z": 100 + 3 * rng.standard_normal(n)}


# --- Granger machinery against statsmodels ---------------------------------------------------------

def test_granger_matches_statsmodels_documented_macrodata_example() -> None:
    # statsmodels' VAR docs: log-differences of realgdp, realcons, realinv, VAR(2):
    # "H_0: ['realinv', 'realcons'] do not Granger-cause realgdp ... Test statistic 9.904841 ... df (4, 579)".
    import statsmodels.api as sm

    data = sm.datasets.macrodata.load_pandas().data[["realgdp", "realcons", "realinv"]]
    x = np.diff(np.log(data.to_numpy()), axis=0)
    res = granger_causality(x, caused=0, causing=[2, 1], lags=2)
    assert res.statistic == pytest.approx(9.904841, abs=1e-6)
    assert res.df == (4, 579)
    assert res.p_value < 1e-6
    assert res.nobs == 200
    assert res.to_dict()["df"] == [4, 579]


@pytest.mark.parametrize("lags", [1, 3, 5])
def test_granger_matches_statsmodels_var_on_random_data(lags: int) -> None:
    from statsmodels.tsa.api import VAR

    rng = np.random.default_rng(lags)
    x = rng.standard_normal((120, 3)).cumsum(axis=0) * 0.1 + rng.standard_normal((120, 3))
    ref = VAR(x).fit(lags, trend="c").test_causality(1, [0, 2], kind="f")
    res = granger_causality(x, caused=1, causing=[0, 2], lags=lags)
    assert res.statistic == pytest.approx(float(ref.test_statistic), rel=1e-9)
    assert res.p_value == pytest.approx(float(ref.pvalue), rel=1e-7, abs=1e-15)
    assert res.df == tuple(int(d) for d in ref.df)


def test_granger_rejects_bad_arguments() -> None:
    x = np.zeros((20, 2))
    with pytest.raises(KpilotError, match="distinct"):
        granger_causality(x, 0, [0], 2)
    with pytest.raises(KpilotError, match="too few"):
        granger_causality(x, 0, [1], 9)


def test_batched_granger_in_discover_equals_granger_causality() -> None:
    s = _planted(3, lag=4)
    edge = discover(s, ["x"], ["y"])[0]
    values = np.vstack([s["x"], s["y"]])
    e = ll._winsorize(ll._whiten(ll._differenced(ll._detrend(values, None)), ll.AR_MAX))
    ref = granger_causality(np.column_stack([e[1], e[0]]), 0, [1], edge.granger_lags)
    assert edge.granger_lags == 12
    assert edge.granger_f == pytest.approx(ref.statistic, rel=1e-8)
    assert edge.granger_p == pytest.approx(ref.p_value, rel=1e-6)


# --- planted effects -----------------------------------------------------------------------------

@pytest.mark.parametrize("lag", [1, 4, 7, 12])
def test_planted_lag_is_found_exactly(lag: int) -> None:
    s = _planted(lag, lag=lag, b=0.8, noise=0.5)
    edges = discover(s, ["x", "y", "z"], ["x", "y", "z"])
    assert [(e.leader, e.follower) for e in edges] == [("x", "y")]  # not y -> x, nothing with the noise z
    e = edges[0]
    assert e.lag == lag
    assert e.window[0] <= lag <= e.window[1]
    assert e.correlation > 0.6
    assert e.p_value < 1e-3 and e.p_raw <= e.p_value
    assert e.n == 156
    assert e.stable
    # y = 50 + 0.8 x: +10 % of x (mean ~104) moves y (mean ~133) by 0.8 * 10.4 / 133 = 6.3 %; the window's
    # two other lags add their sampling noise (see the long-series test for the precision).
    expected = 10 * 0.8 * s["x"].mean() / s["y"].mean()
    assert e.effect == pytest.approx(expected, rel=0.2)
    assert e.granger_p < 1e-6


def test_effect_is_the_elasticity_at_the_means_on_a_long_series() -> None:
    s = _planted(99, lag=4, b=0.8, n=1200, noise=0.5)
    (e,) = discover(s, ["x"], ["y"])
    expected = 10 * 0.8 * s["x"].mean() / s["y"].mean()  # 6.25 %
    assert e.lag == 4 and e.n == 1200
    assert e.effect == pytest.approx(expected, rel=0.05)


def test_negative_lead_keeps_its_sign() -> None:
    s = _planted(11, lag=3, b=-0.6)
    s["y"] = s["y"] + 200  # keep the follower's mean positive so that the effect is defined
    (e,) = discover(s, ["x"], ["y"])
    assert e.lag == 3 and e.correlation < -0.4 and e.effect < 0


def test_independent_random_walks_give_no_edge() -> None:
    # 200 seeds of two independent random walks (3 years of weeks), one test each. With a correct test,
    # false positives ~ Binomial(200, <= alpha): the mean is <= 10; <= 16 is the 0.05 + 2 sd bound.
    hits = 0
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        walks = 1000 + rng.standard_normal((2, 156)).cumsum(axis=1) * 10
        hits += len(discover({"a": walks[0], "b": walks[1]}, ["a"], ["b"]))
    assert hits <= 16


def test_many_independent_walks_at_once_give_almost_no_edge() -> None:
    # 12 walks, 132 pairs per call: BH keeps the chance of any false edge near alpha under the global null.
    calls_with_edges = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        walks = rng.standard_normal((12, 156)).cumsum(axis=1)
        names = [f"w{i}" for i in range(12)]
        calls_with_edges += bool(discover(dict(zip(names, walks, strict=True)), names, names))
    assert calls_with_edges <= 2


def test_benjamini_hochberg_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.2, 0.001, 0.5, 0.04]
    ref = multipletests(p, method="fdr_bh")[1]
    assert ll._benjamini_hochberg(p) == pytest.approx(list(ref), rel=1e-12)


# --- shapes, gaps, errors ------------------------------------------------------------------------

def test_late_start_shortens_the_pair_and_too_short_is_reported() -> None:
    s = _planted(5, lag=2)
    y = s["y"].copy()
    y[:20] = np.nan  # the follower starts 20 periods later
    y[60] = np.nan  # a gap inside is filled linearly
    short = np.full(156, np.nan)
    short[-40:] = s["x"][-40:]
    tests = pair_tests({"x": s["x"], "y": y, "short": short}, ["x", "short"], ["y"])
    by = {(t.leader, t.follower): t for t in tests}
    e = by[("x", "y")].edge
    assert e is not None and e.n == 136 and e.lag == 2 and by[("x", "y")].significant
    bad = by[("short", "y")]
    assert bad.edge is None and not bad.significant
    assert bad.reason == "too few periods in common (40, need 48)"
    assert bad.reason.template == "too few periods in common ({n}, need {need})"
    assert bad.to_dict()["reason"] == "too few periods in common (40, need 48)"


def test_constant_series_is_not_tested() -> None:
    s = _planted(6, lag=2)
    (t,) = pair_tests({"flat": np.full(156, 5.0), "y": s["y"]}, ["flat"], ["y"])
    assert t.edge is None and t.reason == "flat is constant over the periods in common"


def test_to_dict_has_the_eight_keys_first_and_no_nan() -> None:
    e = LeadLagEdge("a", "b", 4, 0.3, 0.01, math.nan, 150, True)
    d = e.to_dict()
    assert list(d)[:8] == KEYS
    assert d["effect"] is None
    s = _planted(8, lag=5)
    s["y"] = s["y"] - 1000  # negative mean: the elasticity is undefined, reported as null
    (edge,) = discover(s, ["x"], ["y"])
    out = edge.to_dict()
    assert list(out)[:8] == KEYS and out["effect"] is None and out["lag"] == 5
    assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in out.values())


def test_bad_inputs_are_reported() -> None:
    with pytest.raises(KpilotError, match="all series must cover the same periods"):
        discover({"a": [1.0] * 60, "b": [1.0] * 50}, ["a"], ["b"])
    with pytest.raises(KpilotError, match="no series named c"):
        discover({"a": [1.0] * 60}, ["a"], ["c"])
    assert discover({"a": [1.0, 2.0] * 30}, ["a"], ["a"]) == []  # leader == follower is skipped


def test_planted_lag_survives_seasonal_adjustment() -> None:
    # A yearly cycle on top of a planted lag: with season=52 the Fourier terms go, the lag stays.
    s = _planted(21, lag=5, noise=0.5)
    cycle = 20 * np.sin(2 * np.pi * np.arange(156) / 52)
    series = {"x": s["x"] + cycle, "y": s["y"] + np.roll(cycle, 9)}
    (e,) = discover(series, ["x"], ["y"], season=52)
    assert e.lag == 5 and e.correlation > 0.5


# --- acme ----------------------------------------------------------------------------------------

CANDIDATES = ["pipeline_generated", "demos_booked", "leads", "mql_rate", "sessions", "ad_spend"]


@pytest.fixture(scope="module")
def acme_weeks(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The candidates and won_revenue by week, aligned, complete weeks only (NaN before a metric starts)."""
    from kpilot.model.periods import Grain
    from kpilot.service import WorkspaceService

    con = duckdb.connect()
    data = acme_dir / "data"
    ends = [con.execute(f"SELECT max({c})::DATE FROM read_csv_auto('{data / f}')").fetchone()
            for f, c in [("leads.csv", "created_at"), ("web_sessions.csv", "date")]]
    last_day = min(e[0] for e in ends if e is not None)  # the data run to here; the week after is partial
    svc = WorkspaceService(acme_dir, state_dir=tmp_path_factory.mktemp("acme"))
    rows = {k: svc.series(k, grain=Grain.week) for k in [*CANDIDATES, "won_revenue"]}
    weeks = sorted({str(r["period"]) for rs in rows.values() for r in rs
                    if date.fromisoformat(str(r["period"])) + timedelta(days=7) <= last_day + timedelta(days=1)})
    out = {}
    for k, rs in rows.items():
        values = {str(r["period"]): r["value"] for r in rs}
        out[k] = np.array([np.nan if values.get(w) is None else float(values[w]) for w in weeks])  # type: ignore[arg-type]
    return out


def test_acme_demos_and_pipeline_lead_won_revenue_by_3_to_5_weeks(acme_weeks: dict[str, np.ndarray]) -> None:
    edges = discover(acme_weeks, CANDIDATES, ["won_revenue"])
    found = {e.leader: e for e in edges}
    assert {"pipeline_generated", "demos_booked"} <= set(found)
    for key in ["pipeline_generated", "demos_booked"]:
        e = found[key]
        assert 3 <= e.lag <= 5 and e.window == (3, 5)
        assert e.correlation > 0.1 and e.effect > 0 and e.p_value <= 0.05
        assert e.n == 148  # won_revenue starts 2024-01-22; 148 complete weeks to 2026-11-16
    # Measured (not asserted beyond the above): only these two pass; both are flagged unstable, the second
    # half of the span favouring a later window (see docs/analysis.md).
    assert set(found) == {"pipeline_generated", "demos_booked"}
