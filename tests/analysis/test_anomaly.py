"""Anomaly detection: planted spikes and shifts are found where they are, clean series stay quiet,
and scores are online (a point's score never depends on later points)."""

from __future__ import annotations

import numpy as np
import pytest

from kpilot.analysis.anomaly import (
    DEFAULT_THRESHOLD,
    REFRACTORY_BREAKTHROUGH,
    REFRACTORY_Z,
    Anomaly,
    anomaly_scores,
    detect,
    increments,
    score_of_z,
    season_from_timestamps,
    severity_of,
    z_of_score,
)
from kpilot.analysis.anomaly import _refractory as refractory
from kpilot.analysis.domain import COUNT, SHARE


def weekly(n: int = 210, seed: int = 7, noise: float = 2.0) -> np.ndarray:
    """Daily values with a weekly pattern (weekends low) around 100, Gaussian noise."""
    rng = np.random.default_rng(seed)
    pattern = np.array([0.0, 5.0, 8.0, 6.0, 3.0, -12.0, -10.0])
    return 100.0 + pattern[np.arange(n) % 7] + rng.normal(0.0, noise, n)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_clean_weekly_series_gives_no_anomaly(seed: int) -> None:
    assert detect(weekly(seed=seed), season=7) == []


def test_planted_spike_is_found_at_its_index() -> None:
    x = weekly()
    x[152] += 30.0  # 15 noise sigmas, on a Saturday trough
    found = detect(x, season=7)
    assert [a.index for a in found] == [152]
    a = found[0]
    assert a.direction == "up"
    assert a.value == pytest.approx(x[152])
    assert a.lower < a.expected < a.upper < a.value
    assert abs(a.expected - (100.0 - 12.0)) < 3.0  # the seasonal baseline expects a Saturday
    assert a.score >= DEFAULT_THRESHOLD and a.severity in ("low", "medium", "high")


def test_planted_level_shift_is_found_where_it_starts() -> None:
    x = weekly()
    x[140:] -= 25.0
    found = detect(x, season=7)
    assert found, "the shift must be found"
    assert found[0].index == 140
    assert found[0].direction == "down"
    assert all(a.index >= 140 for a in found)


def test_spike_without_season_on_short_kpi_series() -> None:
    rng = np.random.default_rng(11)
    x = 1000.0 + np.cumsum(rng.normal(0.0, 5.0, 36)) + rng.normal(0.0, 10.0, 36)  # 36 monthly values
    x[30] += 400.0
    found = detect(x)
    assert [a.index for a in found] == [30]
    assert found[0].severity == "high"


def test_refractory_period_silences_repeats_unless_far_larger() -> None:
    z = np.zeros(30)
    z[5] = REFRACTORY_Z  # an alarm: the next 10 points are quiet
    z[8] = 1.5 * REFRACTORY_Z  # larger, but not far larger: silenced
    z[12] = 1.0  # below the alarm level: silenced too
    z[14] = 1.01 * REFRACTORY_BREAKTHROUGH * REFRACTORY_Z  # far larger news breaks through
    z[17] = REFRACTORY_Z  # past the period (5 + 10): a new alarm
    z[20] = 2.0
    out = refractory(z, 10)
    assert np.flatnonzero(out).tolist() == [5, 14, 17]
    assert out[14] == z[14] and out[17] == z[17]
    np.testing.assert_array_equal(refractory(z[:16], 10), out[:16])  # online


def test_far_larger_anomaly_after_an_alarm_is_still_reported() -> None:
    rng = np.random.default_rng(0)
    x = 100.0 + rng.normal(0.0, 2.0, 300)
    x[100] += 30.0
    x[150] += 300.0  # 50 points after the first alarm, inside its quiet period, but far larger
    assert [a.index for a in detect(x)] == [100, 150]


def test_online_scores_do_not_depend_on_later_points() -> None:
    x = weekly(n=500)
    x[300] += 25.0
    full = anomaly_scores(x, season=7)
    for cut in (50, 200, 301, 450):
        prefix = anomaly_scores(x[:cut], season=7)
        np.testing.assert_array_equal(prefix, full[:cut])
        altered = x.copy()
        altered[cut:] = altered[cut:] * 3.0 + 50.0
        np.testing.assert_array_equal(anomaly_scores(altered, season=7)[:cut], full[:cut])
    assert full[300] == full.max()


def test_online_with_long_history_and_timestamps() -> None:
    rng = np.random.default_rng(3)
    n = 7000  # more than the 6,400-point history
    ts = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
    x = 10.0 + np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0.0, 0.1, n)
    full = anomaly_scores(x, timestamps=ts)
    np.testing.assert_array_equal(anomaly_scores(x[:6600], timestamps=ts[:6600]), full[:6600])


def test_nan_scores_zero_and_is_skipped() -> None:
    x = weekly(n=120)
    with_nan = np.insert(x, [40, 80], np.nan)
    s = anomaly_scores(with_nan)
    assert s[40] == 0.0 and s[81] == 0.0
    np.testing.assert_array_equal(np.delete(s, [40, 81]), anomaly_scores(x))


def test_scores_are_in_unit_interval_and_early_points_are_zero() -> None:
    s = anomaly_scores(weekly(seed=9))
    assert np.all((s >= 0.0) & (s < 1.0))
    assert np.all(s[:10] == 0.0)
    assert anomaly_scores([1.0, 2.0, 3.0]).tolist() == [0.0, 0.0, 0.0]


def test_score_mapping_and_severity() -> None:
    assert float(score_of_z(3.0)) == pytest.approx(0.5)
    assert float(score_of_z(9.0)) == pytest.approx(0.75)
    assert z_of_score(0.75) == pytest.approx(9.0)
    assert [severity_of(s) for s in (0.7, 0.75, 0.84)] == ["low", "medium", "high"]


def test_season_from_timestamps() -> None:
    start = np.datetime64("2024-01-01T00:00")
    assert season_from_timestamps(start + np.arange(50) * np.timedelta64(5, "m")) == 288
    assert season_from_timestamps(start + np.arange(50) * np.timedelta64(30, "m")) == 48
    assert season_from_timestamps(start + np.arange(50) * np.timedelta64(1, "D")) == 7
    assert season_from_timestamps(start + np.arange(50) * np.timedelta64(7, "D")) == 52
    months = np.array(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"], dtype="datetime64[D]")
    assert season_from_timestamps(months) == 12
    assert season_from_timestamps(start + np.arange(50) * np.timedelta64(7, "h")) is None


def test_anomaly_to_dict_is_json_ready() -> None:
    a = Anomaly(index=3, value=10.0, expected=5.0, lower=4.0, upper=6.0, score=0.8, severity="medium",
                direction="up")
    assert a.to_dict() == {"index": 3, "value": 10.0, "expected": 5.0, "lower": 4.0, "upper": 6.0,
                           "score": 0.8, "severity": "medium", "direction": "up"}


# -- short histories, running totals, the band shown, the metric's domain ----------------------------------


def monthly_kpi(n: int = 40, seed: int = 5) -> np.ndarray:
    """A monthly KPI around 200: a slow random walk plus noise."""
    rng = np.random.default_rng(seed)
    return 200.0 + np.cumsum(rng.normal(0.0, 5.0, n)) + rng.normal(0.0, 8.0, n)


@pytest.mark.parametrize("season", [None, 12])
def test_every_short_history_scores_as_the_start_of_a_longer_one(season: int | None) -> None:
    # A young metric (11 months, or a year with a month lost to an offset) once crashed the views that
    # need 12 points; online scoring means each prefix scores exactly as the start of the full series.
    x = monthly_kpi()
    x[30] += 150.0
    full = anomaly_scores(x, season=season)
    for n in range(len(x) + 1):
        np.testing.assert_array_equal(anomaly_scores(x[:n], season=season), full[:n], err_msg=f"{n} points")
    assert int(np.argmax(full)) == 30 and full[30] >= DEFAULT_THRESHOLD


def test_too_short_a_history_flags_nothing() -> None:
    x = monthly_kpi()
    x[10] += 500.0  # huge, but the 11th value of a metric has no year of past to be judged against
    assert detect(x[:11], season=12, quiet=2) == []
    y = monthly_kpi()
    y[12] += 500.0  # the 13th has: it is reported
    assert [a.index for a in detect(y[:13], season=12, quiet=2)] == [12]


def test_increments_of_a_running_total_restart_at_each_reset() -> None:
    ytd = np.array([5.0, 8.0, 12.0, 3.0, 7.0, 10.0, np.nan, 4.0])
    resets = [True, False, False, True, False, False, False, True]
    np.testing.assert_array_equal(increments(ytd, resets), [5.0, 3.0, 4.0, 3.0, 4.0, 3.0, np.nan, 4.0])
    assert increments([2.0, 5.0, 9.0], [False, False, False]).tolist() == [2.0, 3.0, 4.0]  # all-time total


def test_a_year_to_date_is_judged_on_its_increments_not_its_resets() -> None:
    rng = np.random.default_rng(8)
    flow = rng.poisson(40, 48).astype(float)  # four years of monthly amounts
    flow[29] = 160.0  # one real anomaly: June of the third year
    ytd = np.concatenate([np.cumsum(flow[y * 12:(y + 1) * 12]) for y in range(4)])
    januaries = np.arange(48) % 12 == 0
    # On the level, a January reset is a collapse:
    assert any(januaries[a.index] for a in detect(ytd, season=12, quiet=2))
    found = detect(increments(ytd, januaries), season=12, quiet=2)
    assert [(a.index, a.value, a.direction) for a in found] == [(29, 160.0, "up")]


def test_every_anomaly_lies_outside_the_band_shown_for_it() -> None:
    # Counts, a random walk, small rates, counts with a spike: the points reported are exactly those
    # the score flags, and each one's value lies outside the range shown for it.
    reported = 0
    for seed in range(80):
        rng = np.random.default_rng(seed)
        kind = seed % 4
        if kind == 0:
            x = rng.poisson(5.0, 36).astype(float)
        elif kind == 1:
            x = 1000.0 + np.cumsum(rng.normal(0.0, 30.0, 36))
        elif kind == 2:
            x = rng.beta(2.0, 20.0, 36)
        else:
            x = rng.poisson(50.0, 36).astype(float)
            x[rng.integers(12, 36)] *= 3.0
        found = detect(x, season=12, quiet=2)
        scores = anomaly_scores(x, season=12)
        assert [a.index for a in found] == [i for i in np.flatnonzero(scores >= DEFAULT_THRESHOLD) if i >= 12]
        for a in found:
            assert not a.lower <= a.value <= a.upper, (seed, a)
            assert a.lower <= a.expected <= a.upper
            assert a.direction == ("up" if a.value > a.upper else "down")
        reported += len(found)
    assert reported == 21  # not vacuous: the sweep does report anomalies


def spiked(kind: str) -> tuple[np.ndarray, int | None]:
    if kind == "weekly":
        x = weekly()
        x[152] += 30.0
        return x, 7
    if kind == "monthly":
        x = monthly_kpi()
        x[30] += 150.0
        return x, None
    rng = np.random.default_rng(179)  # a count whose last month triples: 123 after 49
    x = rng.poisson(50.0, 36).astype(float)
    x[rng.integers(12, 36)] *= 3.0
    return x, 12


@pytest.mark.parametrize("kind", ["weekly", "monthly", "count"])
def test_the_range_shown_is_what_the_detector_finds_normal(kind: str) -> None:
    # The range is the set of values the point could have taken without being surprising: a value just
    # inside either edge scores below the threshold, one just outside above it.
    x, season = spiked(kind)
    found = detect(x, season=season)
    assert found
    for a in found:
        width = a.upper - a.lower
        for value, flagged in ((a.lower + 1e-6 * width, False), (a.upper - 1e-6 * width, False),
                               (a.lower - 1e-6 * width, True), (a.upper + 1e-6 * width, True)):
            moved = x.copy()
            moved[a.index] = value
            assert bool(anomaly_scores(moved, season=season)[a.index] >= DEFAULT_THRESHOLD) is flagged, (kind, a, value)


def test_a_count_band_is_whole_and_never_negative() -> None:
    rng = np.random.default_rng(1)
    x = rng.poisson(4.0, 48).astype(float)
    x[40] = 30.0
    (raw,) = detect(x, season=12, quiet=2)
    assert raw.index == 40 and raw.lower < 0  # the unbounded band goes below zero
    (a,) = detect(x, season=12, quiet=2, domain=COUNT)
    assert (a.index, a.value, a.score, a.severity) == (raw.index, raw.value, raw.score, raw.severity)
    assert (a.lower, a.upper) == (0.0, float(np.floor(raw.upper)))
    assert a.expected == float(round(raw.expected))


def test_a_share_band_stays_within_0_and_100_percent() -> None:
    rng = np.random.default_rng(2)
    x = rng.beta(2.0, 60.0, 48)  # a churn rate around 3 %
    x[44] = 0.4
    (raw,) = detect(x, season=12, quiet=2)
    assert raw.index == 44 and raw.lower < 0
    (a,) = detect(x, season=12, quiet=2, domain=SHARE)
    assert (a.lower, a.upper, a.expected) == (0.0, raw.upper, raw.expected)


# -- KPI series with known anomalies: recall and false alarms over many series ------------------------------


def trending_kpi(seed: int, n: int, season: int) -> np.ndarray:
    """A KPI that grows (2 a period) with a seasonal swing of 80 and noise of 20 around 1,000."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 1000.0 + 2.0 * t + 80.0 * np.sin(2 * np.pi * t / season) + rng.normal(0.0, 20.0, n)


@pytest.mark.parametrize(("n", "season", "quiet"), [(156, 52, 4), (48, 12, 2), (730, 7, 7)])
def test_kpi_spikes_are_found_and_clean_kpis_stay_quiet(n: int, season: int, quiet: int) -> None:
    # Three years of weeks, four years of months, two years of days; measured on these seeds: every
    # 15-sigma spike found at its index, 28-29 of 30 12-sigma spikes, no other point reported.
    found = {12: 0, 15: 0}
    for seed in range(30):
        clean = trending_kpi(seed, n, season)
        assert detect(clean, season=season, quiet=quiet) == [], seed
        at = int(np.random.default_rng(seed).integers(season + 24, n))
        for k in found:
            x = clean.copy()
            x[at] += k * 20.0 * (1 if seed % 2 else -1)
            reported = [a.index for a in detect(x, season=season, quiet=quiet)]
            assert set(reported) <= {at}, (seed, k, reported)
            found[k] += reported == [at]
    assert found[15] == 30
    assert found[12] >= 24
