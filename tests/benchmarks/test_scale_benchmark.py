"""benchmarks/scale.py at a tiny size: kpilot's values (full and incremental) equal the expert SQL's."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


def test_scale_benchmark_values_match_at_20k_rows() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--rows", "20000", "--repeat", "1", "--format", "json"],
                          capture_output=True, text=True, timeout=120, check=True)
    s = json.loads(done.stdout)
    assert s["mismatches"] == 0
    assert s["metrics"] == 30 and s["rows"] == 20000
    assert s["appended_rows"] > 0
    # The refresh after the appended day recomputed the event aggregates from the last period only.
    assert s["incremental_aggregates"] > 0
    for key in ("kpilot_s", "sql_s", "ratio", "peak_mb", "incremental_s"):
        assert s[key] > 0
    assert 0 <= s["distinct"]["approx_max_rel_error"] < 0.1


def test_scale_comparison_counts_a_wrong_value() -> None:
    spec = importlib.util.spec_from_file_location("scale_bench", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ref = {"leads_w": {"2025-01-06": 10.0, "2025-01-13": None}, "mrr_m": {"2025-01-01": 5.0}}
    assert mod.compare(ref, {"leads_w": {"2025-01-06": 10.0, "2025-01-13": 0.0}, "mrr_m": {"2025-01-01": 5.0}}) == (0, 0.0)
    assert mod.compare(ref, {"leads_w": {"2025-01-06": 10.0}, "mrr_m": {"2025-01-01": 5.5}})[0] == 2
    assert mod.compare(ref, {"leads_w": {"2025-01-06": 10.0, "2025-01-13": 0.0}, "mrr_m": {}})[0] == 1
