"""Anomalies and forecasts of a workspace respect each metric's domain, and judge running totals on what
each period added: four years of monthly events in a CSV, with planted anomalies, analysed as of 2026-01-10."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kpilot.analysis import forecast as forecast_mod
from kpilot.analysis.domain import COUNT, NON_NEGATIVE, SHARE, UNBOUNDED
from kpilot.insights import Insights, domain_of
from kpilot.model import parse_workspace
from kpilot.service import WorkspaceService

AS_OF = date(2026, 1, 10)
SPIKE = date(2024, 6, 1)  # 160 events where ~40 is normal
SHARE_SPIKE = date(2025, 3, 1)  # 25 big events where 1 or 2 is normal

YAML = """
workspace: domains
timezone: UTC
sources: [{key: files, type: csv, path: data/}]
models:
  - {key: events, table: events, time: at}
metrics:
  - {key: signups, model: events, measure: count(*), grain: month}
  - {key: signups_ytd, type: cumulative, model: events, measure: count(*), to_date: year, grain: month}
  - {key: signups_12m, type: cumulative, model: events, measure: count(*), window: 12, grain: month}
  - {key: big_share, type: ratio, unit: percent, grain: month,
     numerator: {model: events, measure: count(*), filter: "kind = 'big'"},
     denominator: {model: events, measure: count(*)}}
  - {key: fading, model: events, measure: count(*), filter: "kind = 'fading'", grain: month}
  - {key: revenue, model: events, measure: sum(amount), grain: month, unit: EUR}
  - {key: margin, model: events, measure: sum(amount) - sum(cost), grain: month, unit: EUR}
  - {key: revenue_per_signup, type: ratio, grain: month, unit: EUR,
     numerator: {metric: revenue}, denominator: {metric: signups}}
  - {key: growth, type: derived, formula: "revenue - offset(revenue, -1)", grain: month, unit: EUR}
  - {key: signup_rate, type: derived, formula: "signups / 1000", grain: month, unit: percent}
"""


def write_workspace(root: Path) -> dict[date, int]:
    """The workspace and its events; returns the number of events per month."""
    rng = np.random.default_rng(4)
    months = [date(2022 + i // 12, i % 12 + 1, 1) for i in range(48)]
    rows: list[str] = []
    counts: dict[date, int] = {}
    for i, month in enumerate(months):
        n = 160 if month == SPIKE else int(rng.poisson(40))
        big = 25 if month == SHARE_SPIKE else 1 + int(rng.integers(0, 2))
        fading = max(0, 30 - i) if i < 30 else int(rng.integers(0, 2))  # 30, 29, ... 1, then 0 or 1
        kinds = ["big"] * big + ["fading"] * fading + ["small"] * max(0, n - big - fading)
        counts[month] = len(kinds)
        last_day = (month + timedelta(days=31)).replace(day=1) - timedelta(days=1)
        for j, kind in enumerate(kinds):  # the month's last event on its last day: every month is complete
            day = last_day if j == len(kinds) - 1 else month + timedelta(days=j % 28)
            rows.append(f"{len(rows)},{day} 12:00:00,{kind},{10 + j % 7},{j % 5}\n")
    (root / "data").mkdir(parents=True)
    (root / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    (root / "data" / "events.csv").write_text("id,at,kind,amount,cost\n" + "".join(rows), encoding="utf-8")
    return counts


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Insights, dict[date, int]]]:
    root = tmp_path_factory.mktemp("domains")
    counts = write_workspace(root)
    with WorkspaceService(root, state_dir=tmp_path_factory.mktemp("domains-state")) as svc:
        yield Insights(svc, as_of=AS_OF), counts


@pytest.fixture(scope="module")
def anomalies(analysed: tuple[Insights, dict[date, int]]) -> dict[str, list[dict[str, Any]]]:
    ins, _ = analysed
    out: dict[str, list[dict[str, Any]]] = {}
    for f in ins.anomalies():
        out.setdefault(f.metric, []).append(f.to_dict())
    return out


def test_the_domain_comes_from_the_definition() -> None:
    ws, _ = parse_workspace(YAML)
    decided = {m.key: domain_of(ws, m) for m in ws.metrics}
    assert decided == {
        "signups": COUNT, "signups_ytd": COUNT, "signups_12m": COUNT,  # count(*), also as running totals
        "big_share": SHARE, "fading": COUNT,
        "revenue": NON_NEGATIVE,  # a sum: non-negative unless its data is negative somewhere
        "margin": UNBOUNDED,  # a difference of sums
        "revenue_per_signup": NON_NEGATIVE,  # a ratio of non-negative metrics
        "growth": UNBOUNDED,  # a formula: nothing known but its unit
        "signup_rate": SHARE,
    }


def test_a_year_to_date_is_judged_on_what_each_month_added(analysed: tuple[Insights, dict[date, int]],
                                                            anomalies: dict[str, list[dict[str, Any]]]) -> None:
    _, counts = analysed
    # The month's own events, judged exactly as the monthly count is: no January reset is an anomaly.
    (ytd,) = anomalies["signups_ytd"]
    (monthly,) = anomalies["signups"]
    assert (ytd["period"], ytd["value"], ytd["basis"]) == (SPIKE, counts[SPIKE], "increment")
    assert monthly["basis"] == "value"
    same = ("value", "expected", "lower", "upper", "score", "severity", "direction")
    assert {k: ytd[k] for k in same} == {k: monthly[k] for k in same}


def test_anomaly_bands_stay_in_the_domain_and_exclude_the_value(anomalies: dict[str, list[dict[str, Any]]]) -> None:
    assert [a["period"] for a in anomalies["big_share"]] == [SHARE_SPIKE]
    for found in anomalies.values():
        for a in found:
            assert not a["lower"] <= a["value"] <= a["upper"], a
            assert a["lower"] <= a["expected"] <= a["upper"], a
    share = anomalies["big_share"][0]
    assert share["lower"] == 0.0 and share["upper"] < 1.0  # the unbounded range started at -7 %
    for key in ("signups", "signups_ytd", "fading"):
        for a in anomalies.get(key, []):
            assert a["lower"] >= 0, a
            assert all(float(a[k]).is_integer() for k in ("expected", "lower", "upper")), a
    # The fading count reached 0 as its trend said it would go on to -1: that is no anomaly.
    assert all(a["value"] > 0 for a in anomalies.get("fading", []))


@pytest.mark.parametrize("key", ["fading", "big_share", "signups"])
def test_forecasts_stay_in_the_domain(analysed: tuple[Insights, dict[date, int]], key: str) -> None:
    ins, counts = analysed
    fc = ins.forecast(key)
    assert fc is not None
    assert [p["period"] for p in fc.points] == ["2026-01-01", "2026-02-01"]
    for p in fc.points:
        assert p["lower"] <= p["value"] <= p["upper"]
        if key == "big_share":
            assert p["lower"] >= 0.0
            assert p["upper"] <= 1.0
        else:
            assert p["lower"] >= 0.0
            assert all(float(p[k]).is_integer() for k in ("value", "lower", "upper"))
    if key == "fading":  # the last year was 0 or 1 a month: the interval starts at 0, not at -1
        assert fc.points[0]["lower"] == 0.0
    if key == "signups":  # far from 0: the model's forecast of the CSV's monthly counts, only rounded
        raw = forecast_mod.forecast([counts[m] for m in sorted(counts)], 2, season=12)
        assert [(p["value"], p["lower"], p["upper"]) for p in fc.points] == [
            (round(r.value), math.ceil(r.lower), math.floor(r.upper)) for r in raw.points]
