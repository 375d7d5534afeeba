"""`kpilot explain` names the combinations of dimension values that moved a metric, in words and in JSON.

A small workspace is generated here: sales per region x segment x channel over two months, with one planted
cause per metric. Expected numbers are plain sums over the generated rows, never kpilot's.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKSPACE = """workspace: shop
language: en
sources: [{key: files, type: csv, path: data/}]
models: [{key: sales, table: sales, time: day, dimensions: [region, segment, channel]}]
metrics:
  - {key: revenue, model: sales, measure: sum(amount), grain: month}
  - key: win_rate
    type: ratio
    numerator: {model: sales, measure: count(*), filter: "won"}
    denominator: {model: sales, measure: count(*)}
    grain: month
    unit: percent
  - {key: buyers, model: sales, measure: count(distinct customer), grain: month}
  - {key: basket, model: sales, measure: avg(amount), grain: month}
  - {key: per_buyer, type: derived, formula: revenue / buyers, grain: month}
"""
REGIONS, SEGMENTS, CHANNELS = ["north", "south", "east", "west"], ["PME", "ETI", "GE"], ["seo", "linkedin_ads", "referral"]


def rows() -> list[tuple[str, str, str, str, float, bool, int]]:
    """(day, region, segment, channel, amount, won, customer): 60 deals per cell and month; in October the amounts of
    PME x LinkedIn Ads fall by 70 % and the deals of ETI in the north are won four times less often."""
    rng = np.random.default_rng(42)
    out = []
    for month, (region, segment, channel) in itertools.product((9, 10), itertools.product(REGIONS, SEGMENTS,
                                                                                           CHANNELS)):
        for k in range(60):
            amount = float(rng.uniform(800, 1200))
            won_rate = 0.4
            if month == 10 and segment == "PME" and channel == "linkedin_ads":
                amount *= 0.3
            if month == 10 and segment == "ETI" and region == "north":
                won_rate = 0.1
            out.append((f"2026-{month:02d}-{1 + k % 28:02d}", region, segment, channel, round(amount, 2),
                        bool(rng.random() < won_rate), int(rng.integers(0, 400))))
    return out


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[tuple[str, str, str, str, float, bool, int]]]:
    root = tmp_path_factory.mktemp("shop")
    workspace, state = root / "ws", root / "state"
    (workspace / "data").mkdir(parents=True)
    (workspace / "kpilot.yaml").write_text(WORKSPACE, encoding="utf-8")
    data = rows()
    lines = ["day,region,segment,channel,amount,won,customer"]
    lines += [f"{d},{r},{s},{c},{a},{str(w).lower()},{u}" for d, r, s, c, a, w, u in data]
    (workspace / "data" / "sales.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return workspace, state, data


def explain(shop: tuple[Path, Path, object], metric: str, *args: str) -> subprocess.CompletedProcess[str]:
    workspace, state, _ = shop
    return subprocess.run([sys.executable, "-m", "kpilot.cli", "explain", metric, "--from", "2026-09", "--to",
                           "2026-10", "--as-of", "2026-11-15", "-w", str(workspace), "--state-dir", str(state), *args],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, COLUMNS="200"))


def test_a_sum_names_its_cause_in_words_and_json(shop: tuple[Path, Path, list[tuple[str, str, str, str, float, bool,
                                                                                         int]]]) -> None:
    data = shop[2]
    before = sum(a for d, _, s, c, a, _, _ in data if d.startswith("2026-09") and (s, c) == ("PME", "linkedin_ads"))
    after = sum(a for d, _, s, c, a, _, _ in data if d.startswith("2026-10") and (s, c) == ("PME", "linkedin_ads"))
    r = explain(shop, "revenue", "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [c["element"] for c in out["causes"]] == ["segment=PME&channel=linkedin_ads"]
    cause = out["causes"][0]
    assert (cause["before"], cause["after"]) == pytest.approx((before, after), rel=1e-9)
    assert cause["cells"] == len(REGIONS)
    text = explain(shop, "revenue", "--lang", "en")
    assert text.returncode == 0, text.stderr
    assert "What moved it (" in text.stdout
    assert f"• Segment = PME & Channel = LinkedIn Ads: {before:,.0f} → {after:,.0f} ({after - before:,.0f}" in text.stdout
    french = explain(shop, "revenue", "--lang", "fr")
    assert "Ce qui l'a fait bouger (" in french.stdout
    assert "• Segment = PME & Channel = LinkedIn Ads :" in french.stdout


def test_a_ratio_names_the_combination_whose_rate_fell(shop: tuple[Path, Path, list[tuple[str, str, str, str, float,
                                                                                             bool, int]]]) -> None:
    data = shop[2]

    def rate(month: str) -> float:
        cell = [w for d, r, s, _, _, w, _ in data if d.startswith(month) and (r, s) == ("north", "ETI")]
        return sum(cell) / len(cell)

    r = explain(shop, "win_rate", "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [(c["element"], c["effect"]) for c in out["causes"]] == [("region=north&segment=ETI", "rate")]
    cause = out["causes"][0]
    assert (cause["before"], cause["after"]) == pytest.approx((rate("2026-09"), rate("2026-10")), rel=1e-12)
    assert cause["mix"] + cause["rate"] == pytest.approx(cause["change"], abs=1e-12)
    text = explain(shop, "win_rate", "--lang", "en").stdout
    assert "• Region = North & Segment = ETI: its own rate" in text


@pytest.mark.parametrize("metric", ["buyers", "basket", "per_buyer"])
def test_a_distinct_count_an_average_or_a_formula_is_refused_with_the_way_out(
        shop: tuple[Path, Path, object], metric: str) -> None:
    r = explain(shop, metric, "--lang", "en")
    assert r.returncode == 1
    text = " ".join(r.stderr.split())
    assert f"a change of {metric} cannot be split by dimension" in text
    assert "Fix: explain the sums or counts it is made of (an average as a ratio of two sums: `type: ratio`)" in text
