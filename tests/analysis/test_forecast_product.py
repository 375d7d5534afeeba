"""The M4 benchmark scores the product's forecast: `product_forecast` in benchmarks/m4.py and `kpilot forecast`
(kpilot.insights) make the same forecast of the same weekly history, with the same evidence."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from benchmarks.m4 import product_forecast

from kpilot.insights import Insights
from kpilot.model import Grain
from kpilot.service import WorkspaceService

YAML = """
workspace: weekly
timezone: UTC
sources: [{key: files, type: csv, path: data/}]
models:
  - {key: orders, table: orders, time: at}
metrics:
  - {key: orders, model: orders, measure: count(*), grain: week}
north_star: orders
"""
FIRST = date(2024, 1, 1)  # a Monday
WEEKS = 110
AS_OF = FIRST + timedelta(weeks=WEEKS)  # the Monday after the last complete week: nothing of this week yet


def test_benchmark_and_kpilot_forecast_make_the_same_forecast(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    weekly = [int(v) for v in 40 + 0.2 * np.arange(WEEKS) + 8 * np.sin(2 * np.pi * np.arange(WEEKS) / 52)
              + rng.normal(0, 3, WEEKS)]
    rows = [f"{i},{FIRST + timedelta(weeks=w, days=i % 7)} 10:00:00\n"
            for w, count in enumerate(weekly) for i in range(count)]
    (tmp_path / "data").mkdir()
    (tmp_path / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    (tmp_path / "data" / "orders.csv").write_text("id,at\n" + "".join(rows), encoding="utf-8")

    with WorkspaceService(tmp_path, state_dir=tmp_path / "state") as svc:
        ins = Insights(svc, as_of=AS_OF)
        shown = ins.forecast("orders", edges=[])
        history = ins.aligned(["orders"], Grain.week).values["orders"]
    assert shown is not None
    assert history.tolist() == weekly  # the engine's weekly counts are the events written
    bench = product_forecast(history, 2)
    assert shown.method == bench.method
    assert shown.evidence == bench.evidence()
    assert shown.evidence["baseline"] == "seasonal_naive" and shown.evidence["coverage_points"] > 0
    # A count is shown as a whole number: the same forecast, rounded.
    assert [p["value"] for p in shown.points] == pytest.approx([p.value for p in bench.points], abs=0.5)
