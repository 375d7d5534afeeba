"""Root cause: exact additivity on published data, a ratio split by hand, appearing and vanishing cells."""

from __future__ import annotations

import itertools
import json
import math
import random
from datetime import date
from pathlib import Path

import pytest
from vega_datasets import data

from kpilot.analysis.rootcause import (
    check_data_grain,
    comparison,
    data_grain,
    explain_additive,
    explain_ratio,
    periods_to_compare,
)
from kpilot.model.errors import KpilotError
from kpilot.model.periods import Grain, WeekStart

# BLS supersectors of US nonfarm payrolls (thousands of jobs), grouped by domain.
SUPERSECTORS = {
    "mining_and_logging": "goods", "construction": "goods", "manufacturing": "goods",
    "trade_transportation_utilties": "private_services", "information": "private_services",
    "financial_activities": "private_services", "professional_and_business_services": "private_services",
    "education_and_health_services": "private_services", "leisure_and_hospitality": "private_services",
    "other_services": "private_services", "government": "government",
}
TTU_PARTS = ["wholesale_trade", "retail_trade", "transportation_and_warehousing", "utilities"]


@pytest.fixture(scope="module")
def employment() -> dict[str, dict[str, float]]:
    df = data.us_employment()
    return {str(row["month"])[:7]: {k: float(v) for k, v in row.items() if k != "month"} for _, row in df.iterrows()}


def test_nonfarm_is_exactly_the_sum_of_the_supersectors(employment: dict[str, dict[str, float]]) -> None:
    # The premise of the check below, in every one of the 120 months of the data.
    for row in employment.values():
        assert sum(row[s] for s in SUPERSECTORS) == row["nonfarm"]


def test_recession_split_by_supersector_is_exact(employment: dict[str, dict[str, float]]) -> None:
    b, a = employment["2008-06"], employment["2009-06"]
    cells = {(dom, s): b[s] for s, dom in SUPERSECTORS.items()}, {(dom, s): a[s] for s, dom in SUPERSECTORS.items()}
    ex = explain_additive(*cells, ["domain", "supersector"], totals=(b["nonfarm"], a["nonfarm"]))
    assert ex.total_change == a["nonfarm"] - b["nonfarm"] == -6_694.0  # jobs lost June 2008 -> June 2009 (thousands)
    assert ex.residual == 0.0
    by_sector = ex.for_dimensions("supersector")
    assert len(by_sector) == 11
    assert math.fsum(c.change for c in by_sector) == ex.total_change
    # Biggest first: manufacturing lost the most jobs, and health/education still grew.
    assert by_sector[0].values == ("manufacturing",) and by_sector[0].change == a["manufacturing"] - b["manufacturing"]
    health = next(c for c in by_sector if c.values == ("education_and_health_services",))
    assert health.change > 0 and health.share is not None and health.share < 0
    by_domain = {c.values[0]: c.change for c in ex.for_dimensions("domain")}
    assert by_domain["goods"] == sum(a[s] - b[s] for s, d in SUPERSECTORS.items() if d == "goods")
    assert math.fsum(by_domain.values()) == ex.total_change
    # A pair of nested dimensions gives the supersectors again.
    assert sorted(c.change for c in ex.for_dimensions("domain", "supersector")) == sorted(c.change for c in by_sector)
    assert math.isclose(math.fsum(c.share or 0.0 for c in by_sector), 1.0, abs_tol=1e-12)


def test_every_consecutive_month_splits_exactly(employment: dict[str, dict[str, float]]) -> None:
    months = sorted(employment)
    for m0, m1 in itertools.pairwise(months):
        b, a = employment[m0], employment[m1]
        ex = explain_additive({(s,): b[s] for s in SUPERSECTORS}, {(s,): a[s] for s in SUPERSECTORS}, ["supersector"],
                              totals=(b["nonfarm"], a["nonfarm"]))
        assert ex.residual == 0.0
        assert ex.total_change == a["nonfarm_change"]  # the published monthly change


def test_rounded_subsectors_leave_a_visible_residual(employment: dict[str, dict[str, float]]) -> None:
    # Trade, transportation and utilities is published rounded to the thousand, its parts to the hundred:
    # the parts do not add up exactly, and the gap is reported, not spread over the parts.
    b, a = employment["2008-06"], employment["2009-06"]
    ex = explain_additive({(p,): b[p] for p in TTU_PARTS}, {(p,): a[p] for p in TTU_PARTS}, ["industry"],
                          totals=(b["trade_transportation_utilties"], a["trade_transportation_utilties"]))
    parts_change = sum(a[p] - b[p] for p in TTU_PARTS)
    assert ex.residual == pytest.approx(ex.total_change - parts_change, abs=1e-9)
    assert ex.residual == pytest.approx(0.1, abs=1e-9)  # -1489 reported, -1489.1 from the parts
    assert math.fsum(c.change for c in ex.contributions) + ex.residual == pytest.approx(ex.total_change, abs=1e-9)


def test_ratio_mix_and_rate_by_hand() -> None:
    # seo converts 30% then 20% on a flat 100 leads; ads converts 10% but grows from 100 to 300 leads.
    before = {("seo",): (30.0, 100.0), ("ads",): (10.0, 100.0)}
    after = {("seo",): (20.0, 100.0), ("ads",): (30.0, 300.0)}
    ex = explain_ratio(before, after, ["channel"])
    assert ex.kind == "ratio"
    assert ex.total_before == pytest.approx(0.2) and ex.total_after == pytest.approx(0.125)
    assert ex.total_change == pytest.approx(-0.075)
    seo, ads = (next(c for c in ex.contributions if c.values == (v,)) for v in ("seo", "ads"))
    # w: seo 0.5 -> 0.25, ads 0.5 -> 0.75; mean total ratio (0.2 + 0.125) / 2 = 0.1625
    assert seo.rate == pytest.approx(-0.1 * (0.5 + 0.25) / 2)  # -0.0375
    assert seo.mix == pytest.approx(-0.25 * ((0.3 + 0.2) / 2 - 0.1625))  # -0.021875
    assert ads.rate == pytest.approx(0.0)
    assert ads.mix == pytest.approx(0.25 * (0.1 - 0.1625))  # -0.015625
    assert (seo.before, seo.after, seo.weight_before, seo.weight_after) == pytest.approx((0.3, 0.2, 0.5, 0.25))
    assert ex.contributions[0] is seo  # biggest |change| first
    assert seo.change + ads.change == pytest.approx(ex.total_change, abs=1e-15)
    assert seo.share == pytest.approx(0.059375 / 0.075)


def test_pure_mix_shift_has_no_rate_effect() -> None:
    before = {("seo",): (30.0, 100.0), ("ads",): (10.0, 100.0)}
    after = {("seo",): (30.0, 100.0), ("ads",): (30.0, 300.0)}
    ex = explain_ratio(before, after, ["channel"])
    assert all(c.rate == 0.0 for c in ex.contributions)
    assert {c.values[0]: c.mix for c in ex.contributions} == pytest.approx({"seo": -0.03125, "ads": -0.01875})


def test_appearing_and_vanishing_cells() -> None:
    before = {("seo", "PME"): (10.0, 50.0), ("ads", "ETI"): (4.0, 40.0), ("events", "ETI"): (3.0, 10.0)}
    after = {("seo", "PME"): (12.0, 50.0), ("ads", "ETI"): (4.0, 40.0), ("partner", "PME"): (9.0, 30.0)}
    ex = explain_ratio(before, after, ["channel", "segment"])
    events = ex.for_dimensions("channel")
    vanished = next(c for c in events if c.values == ("events",))
    assert vanished.after is None and vanished.rate == 0.0 and vanished.weight_after == 0.0
    appeared = next(c for c in events if c.values == ("partner",))
    assert appeared.before is None and appeared.rate == 0.0
    mean = (ex.total_before + ex.total_after) / 2
    assert appeared.mix == pytest.approx(appeared.weight_after * (0.3 - mean))  # type: ignore[operator]
    for dims in (("channel",), ("segment",), ("channel", "segment")):
        assert math.fsum(c.change for c in ex.for_dimensions(*dims)) == pytest.approx(ex.total_change, abs=1e-12)
    additive = explain_additive({k: v[0] for k, v in before.items()}, {k: v[0] for k, v in after.items()},
                                ["channel", "segment"])
    gone = next(c for c in additive.for_dimensions("channel") if c.values == ("events",))
    assert (gone.before, gone.after, gone.change) == (3.0, 0.0, -3.0)
    assert additive.total_change == 8.0 and additive.residual == 0.0
    json.dumps([ex.to_dict(), additive.to_dict()], allow_nan=False)


def test_random_cells_sum_exactly_for_every_dimension_and_pair() -> None:
    rng = random.Random(7)
    dims = ["channel", "segment", "region"]
    values = [["seo", "ads", "email", "events"], ["PME", "ETI"], ["nord", "sud", "ouest"]]
    keys = [(c, s, r) for c in values[0] for s in values[1] for r in values[2]]
    for _ in range(20):
        b = {k: (rng.uniform(0, 50), rng.uniform(1, 200)) for k in keys if rng.random() > 0.15}
        a = {k: (rng.uniform(0, 50), rng.uniform(1, 200)) for k in keys if rng.random() > 0.15}
        ratio = explain_ratio(b, a, dims)
        additive = explain_additive({k: v[0] for k, v in b.items()}, {k: v[0] for k, v in a.items()}, dims)
        assert len({c.dimensions for c in ratio.contributions}) == 3 + 3
        for ex in (ratio, additive):
            assert abs(ex.residual) < 1e-9
            for group in {c.dimensions for c in ex.contributions}:
                assert math.fsum(c.change for c in ex.for_dimensions(*group)) == pytest.approx(ex.total_change,
                                                                                                abs=1e-9)
        for c in ratio.contributions:
            assert c.mix is not None and c.rate is not None
            assert c.mix + c.rate == pytest.approx(c.change, abs=1e-12)


def test_no_change_gives_no_share_and_pairs_can_be_off() -> None:
    cells = {("a", "x"): 5.0, ("b", "y"): 7.0}
    ex = explain_additive(cells, cells, ["d1", "d2"], pairs=False)
    assert ex.total_change == 0.0 and all(c.share is None for c in ex.contributions)
    assert {c.dimensions for c in ex.contributions} == {("d1",), ("d2",)}
    assert ex.to_dict()["contributions"][0] == {  # type: ignore[index]
        "dimensions": ["d1"], "values": ["a"], "before": 5.0, "after": 5.0, "change": 0.0, "share": None,
        "mix": None, "rate": None, "weight_before": None, "weight_after": None}


def test_bad_input_is_explained() -> None:
    with pytest.raises(KpilotError, match="denominator is 0 in the period before"):
        explain_ratio({("a",): (0.0, 0.0)}, {("a",): (1.0, 2.0)}, ["d"])
    with pytest.raises(KpilotError, match=r"the period before has a cell \('a', 'x'\) with 2 value\(s\) for 1 dimension"):
        explain_additive({("a", "x"): 1.0}, {}, ["d"])
    with pytest.raises(KpilotError, match="not a finite number"):
        explain_additive({("a",): math.nan}, {}, ["d"])
    with pytest.raises(KpilotError, match="at least one dimension"):
        explain_additive({}, {}, [])


@pytest.fixture(scope="module")
def acme_months(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, object]]]:
    from kpilot.model.periods import Grain
    from kpilot.service import WorkspaceService

    svc = WorkspaceService(acme_dir, state_dir=tmp_path_factory.mktemp("acme"))
    dims = ["segment", "source_channel"]
    return {
        "win_rate": svc.series("win_rate", grain=Grain.month),
        "win_rate_cells": svc.breakdown("win_rate", dims, grain=Grain.month),
        "won_revenue": svc.series("won_revenue", grain=Grain.month),
        "won_revenue_cells": svc.breakdown("won_revenue", dims, grain=Grain.month),
    }


def _cells(rows: list[dict[str, object]], period: str, parts: tuple[str, ...]) -> dict[tuple[str, ...], object]:
    out: dict[tuple[str, ...], object] = {}
    for r in rows:
        if r["period"] == period:
            vals = tuple(float(r[p]) for p in parts)  # type: ignore[arg-type]
            out[(str(r["segment"]), str(r["source_channel"]))] = vals if len(vals) == 2 else vals[0]
    return out


def test_acme_win_rate_drop_splits_into_mix_and_rate(acme_months: dict[str, list[dict[str, object]]]) -> None:
    # September 2026: the win rate fell from 30.2 % to 25.8 %; the engine's cells explain all of it.
    series = {r["period"]: r["value"] for r in acme_months["win_rate"]}
    cells = acme_months["win_rate_cells"]
    b = _cells(cells, "2026-08-01", ("numerator", "denominator"))
    a = _cells(cells, "2026-09-01", ("numerator", "denominator"))
    ex = explain_ratio(b, a, ["segment", "source_channel"])  # type: ignore[arg-type]
    assert ex.total_before == pytest.approx(series["2026-08-01"], abs=1e-12)
    assert ex.total_after == pytest.approx(series["2026-09-01"], abs=1e-12)
    for group in (("segment",), ("source_channel",), ("segment", "source_channel")):
        assert math.fsum(c.change for c in ex.for_dimensions(*group)) == pytest.approx(ex.total_change, abs=1e-12)
        assert math.fsum((c.mix or 0.0) + (c.rate or 0.0) for c in ex.for_dimensions(*group)) == pytest.approx(
            ex.total_change, abs=1e-12)


def test_acme_won_revenue_cells_add_up_to_the_series(acme_months: dict[str, list[dict[str, object]]]) -> None:
    series = {r["period"]: float(r["value"]) for r in acme_months["won_revenue"]}  # type: ignore[arg-type]
    cells = acme_months["won_revenue_cells"]
    months = sorted(series)[-13:-1]  # the last 12 complete months
    for m0, m1 in itertools.pairwise(months):
        ex = explain_additive(_cells(cells, m0, ("value",)), _cells(cells, m1, ("value",)),  # type: ignore[arg-type]
                              ["segment", "source_channel"], totals=(series[m0], series[m1]))
        assert ex.residual == pytest.approx(0.0, abs=1e-6)


# --- which periods are compared --------------------------------------------------------------------


def test_named_periods_give_the_grain_and_days_take_it() -> None:
    # A month asked of a weekly metric is a month; a week of a monthly one a week.
    assert periods_to_compare("2026-10", "2026-11", Grain.week) == (Grain.month, date(2026, 10, 1), date(2026, 11, 1))
    assert periods_to_compare("2026-W40", "2026-W41", Grain.month) == (Grain.week, date(2026, 9, 28),
                                                                       date(2026, 10, 5))
    assert periods_to_compare("2026-Q2", "2026-Q3", Grain.week) == (Grain.quarter, date(2026, 4, 1), date(2026, 7, 1))
    assert periods_to_compare("2025", "2026", Grain.month) == (Grain.year, date(2025, 1, 1), date(2026, 1, 1))
    # A day stands for the period holding it: of --grain, else of the other period's grain, else the metric's.
    assert periods_to_compare("2026-10-15", "2026-11-03", Grain.week, Grain.month) == (
        Grain.month, date(2026, 10, 1), date(2026, 11, 1))
    assert periods_to_compare("2026-10-15", "2026-11", Grain.week) == (Grain.month, date(2026, 10, 1),
                                                                       date(2026, 11, 1))
    assert periods_to_compare(date(2026, 10, 15), date(2026, 10, 22), Grain.week) == (
        Grain.week, date(2026, 10, 12), date(2026, 10, 19))
    # A week named by its ISO number is the workspace's week holding its Monday.
    assert periods_to_compare("2026-W41", "2026-W42", Grain.week, week_start=WeekStart.sunday) == (
        Grain.week, date(2026, 10, 4), date(2026, 10, 11))


def test_periods_that_cannot_be_compared_are_explained() -> None:
    with pytest.raises(KpilotError, match=r"not of the same grain: 2026-10 \(month\) and 2026-W45 \(week\)"):
        periods_to_compare("2026-10", "2026-W45", Grain.week)
    with pytest.raises(KpilotError, match=r"'2026-10' is a period of grain month, not week. Fix: write it as a "
                                          r"week \(like 2026-W40\)"):
        periods_to_compare("2026-10", "2026-11", Grain.week, Grain.week)
    with pytest.raises(KpilotError, match=r"the period after: '2026-13' is not a period"):
        periods_to_compare("2026-10", "2026-13", Grain.month)
    with pytest.raises(KpilotError, match=r"the two periods are the same \(2026-W42\)"):
        periods_to_compare("2026-10-12", "2026-10-18", Grain.week)


def test_complete_periods_are_compared_whole() -> None:
    c = comparison("Pipeline", Grain.month, date(2026, 10, 1), date(2026, 11, 1), as_of=date(2026, 11, 30),
                   through=date(2026, 11, 30), metric_grain=Grain.week)
    assert (c.before_end, c.after_end, c.days) == (date(2026, 11, 1), date(2026, 12, 1), None)
    assert c.regrained and (c.before_label, c.after_label) == ("2026-10", "2026-11")
    assert c.to_dict()["after"] == {"period": "2026-11-01", "label": "2026-11", "first": "2026-11-01",
                                    "last": "2026-11-30"}


def test_a_period_in_progress_is_compared_with_the_same_days_of_the_other() -> None:
    c = comparison("Pipeline", Grain.month, date(2026, 10, 1), date(2026, 11, 1), as_of=date(2026, 11, 26),
                   through=date(2026, 11, 26), metric_grain=Grain.month)
    assert (c.before_end, c.after_end, c.days) == (date(2026, 10, 27), date(2026, 11, 27), 26)
    assert not c.regrained
    # Data two days late: the days it reaches, on both sides.
    c = comparison("Pipeline", Grain.month, date(2026, 10, 1), date(2026, 11, 1), as_of=date(2026, 11, 26),
                   through=date(2026, 11, 24), metric_grain=Grain.month)
    assert (c.before_end, c.after_end, c.days) == (date(2026, 10, 25), date(2026, 11, 25), 24)
    # The earlier period is shorter than the days elapsed: it is compared whole.
    c = comparison("Pipeline", Grain.month, date(2026, 2, 1), date(2026, 3, 1), as_of=date(2026, 3, 30),
                   through=date(2026, 3, 30), metric_grain=Grain.month)
    assert (c.before_end, c.after_end, c.days) == (date(2026, 3, 1), date(2026, 3, 31), 30)
    # Given in reverse order, the later period is still the one in progress.
    c = comparison("Pipeline", Grain.week, date(2026, 11, 23), date(2026, 11, 16), as_of=date(2026, 11, 26),
                   through=date(2026, 11, 26), metric_grain=Grain.week)
    assert (c.before_end, c.after_end, c.days) == (date(2026, 11, 27), date(2026, 11, 20), 4)


def test_a_period_not_started_or_without_data_is_explained() -> None:
    with pytest.raises(KpilotError, match=r"2026-12 has not started as of 2026-11-26"):
        comparison("Pipeline", Grain.month, date(2026, 11, 1), date(2026, 12, 1), as_of=date(2026, 11, 26),
                   through=date(2026, 11, 26), metric_grain=Grain.month)
    with pytest.raises(KpilotError, match=r"2026-12 holds no data of Pipeline yet: its data runs through "
                                          r"2026-11-30. Fix: compare complete periods."):
        comparison("Pipeline", Grain.month, date(2026, 11, 1), date(2026, 12, 1), as_of=date(2026, 12, 6),
                   through=date(2026, 11, 30), metric_grain=Grain.month)


def test_the_grain_rows_are_dated_by() -> None:
    months = [date(2026, m, 1) for m in range(1, 10)]
    mondays = [date(2026, 10, 5), date(2026, 10, 12), date(2026, 10, 26)]
    assert data_grain(months) is Grain.month
    assert data_grain([date(2026, 1, 1), date(2026, 4, 1), date(2026, 7, 1)]) is Grain.quarter
    assert data_grain(mondays) is Grain.week
    assert data_grain([*mondays, date(2026, 10, 7)]) is Grain.day
    assert data_grain(months[:2]) is Grain.day  # two days prove nothing
    check_data_grain("Budget", Grain.month, months)
    with pytest.raises(KpilotError, match=r"Budget cannot be compared by week: its rows are dated by month .* Fix: "
                                          r"compare periods of grain month or longer."):
        check_data_grain("Budget", Grain.week, months)
