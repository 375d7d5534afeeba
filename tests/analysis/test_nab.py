"""The NAB scorer: a tiny hand-computed file, the sweep against the per-threshold scorer, and the exact
reproduction of NAB's published windowedGaussian scores (per file, per profile) from its outputs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from kpilot.analysis import nab
from tests.conftest import SHARED

NAB_DIR = SHARED / "data" / "nab"
REF = NAB_DIR / "reference"


def sigmoid_scaled(x: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def test_scaled_sigmoid_values() -> None:
    assert float(nab.scaled_sigmoid(0.0)) == 0.0
    assert float(nab.scaled_sigmoid(-1.0)) == pytest.approx(0.9866142981514305)
    assert float(nab.scaled_sigmoid(3.5)) == -1.0
    assert nab.probation_length(20) == 3
    assert nab.probation_length(22695) == 750  # at most 15 % of 5,000


def test_tiny_file_by_hand() -> None:
    # 20 points, probation 3 points, one window [10, 13] (width 4).
    layout = nab.file_layout(20, [[10, 13]])
    scores = np.zeros(20)
    scores[[1, 5, 11, 12, 16]] = 1.0  # 1: in probation (ignored); 5: before the window; 11, 12: inside; 16: after
    tp_11 = sigmoid_scaled(-(13 - 11 + 1) / 4) / sigmoid_scaled(-1.0)  # the first detection in the window
    fp_16 = sigmoid_scaled((16 - 13) / (4 - 1))  # one window width past it: about -0.987
    standard = tp_11 + 0.11 * fp_16 - 0.11  # before any window: the full -A_FP
    got = nab.score_file(scores, layout, nab.PROFILES["standard"], threshold=0.5)
    assert got.score == pytest.approx(standard, abs=1e-12)
    assert standard == pytest.approx(0.96699 - 0.10853 - 0.11, abs=1e-5)  # 0.7485
    assert (got.tp, got.fp, got.fn, got.tn, got.total_count) == (2, 2, 2, 11, 20)
    low_fp = nab.score_file(scores, layout, nab.PROFILES["reward_low_FP_rate"], threshold=0.5)
    assert low_fp.score == pytest.approx(tp_11 + 0.22 * fp_16 - 0.22, abs=1e-12)
    # Nothing detected: the window is missed.
    assert nab.score_file(scores, layout, nab.PROFILES["reward_low_FN_rate"], threshold=2.0).score == -2.0
    # Detected at the window start: exactly A_TP.
    start = np.zeros(20)
    start[10] = 1.0
    assert nab.score_file(start, layout, nab.PROFILES["standard"], threshold=1.0).score == pytest.approx(1.0)


def test_sweep_equals_scoring_every_threshold() -> None:
    rng = np.random.default_rng(0)
    layouts = [nab.file_layout(300, [[100, 129], [200, 239]]), nab.file_layout(200, []),
               nab.file_layout(250, [[10, 40], [150, 170]])]  # the first window lies in the probation
    scores = [np.round(rng.random(lay.n_points), 2) for lay in layouts]
    for costs in nab.PROFILES.values():
        sw = nab.sweep(scores, layouts, costs)
        assert sw.thresholds[0] == 1.1 and sw.scores[0] == nab.null_score(layouts, costs)
        for t, total in zip(sw.thresholds, sw.scores, strict=True):
            direct = sum(nab.score_file(s, lay, costs, float(t)).score for s, lay in zip(scores, layouts, strict=True))
            assert total == pytest.approx(direct, abs=1e-9)
        best_t, best = sw.best()
        assert best == max(sw.scores) and best_t == sw.thresholds[np.argmax(sw.scores)]


def test_normalisation() -> None:
    layouts = [nab.file_layout(100, [[50, 59]]), nab.file_layout(100, [[20, 29], [70, 79]])]
    costs = nab.PROFILES["reward_low_FN_rate"]
    null, perfect = nab.null_score(layouts, costs), nab.perfect_score(layouts, costs)
    assert (null, perfect) == (-6.0, 3.0)
    assert nab.normalized(null, null, perfect) == 0.0 and nab.normalized(perfect, null, perfect) == 100.0


# ---- exact reproduction of NAB's published windowedGaussian scores ----

def _read_reference_outputs() -> tuple[list[str], list[nab.FileLayout], list[np.ndarray]]:
    windows = json.loads((NAB_DIR / "combined_windows.json").read_text())
    files = sorted(windows)
    layouts, scores = [], []
    for name in files:
        category, base = name.split("/")
        with (REF / "windowedGaussian" / category / f"windowedGaussian_{base}").open(newline="") as f:
            rows = list(csv.DictReader(f))
        ts = np.array([r["timestamp"] for r in rows], dtype="datetime64[ns]")
        scores.append(np.array([float(r["anomaly_score"]) for r in rows]))
        layouts.append(nab.file_layout(len(rows), nab.window_indices(ts, windows[name])))
    return files, layouts, scores


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], list[nab.FileLayout], list[np.ndarray]]:
    if not REF.exists():
        pytest.fail(f"NAB reference data missing at {REF}")
    return _read_reference_outputs()


def _published_table(profile: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    with (REF / "windowedGaussian" / f"windowedGaussian_{profile}_scores.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["File"]: r for r in rows if r["Detector"] != "Totals"}, next(r for r in rows if r["Detector"] == "Totals")


@pytest.mark.parametrize("profile", list(nab.PROFILES))
def test_windowed_gaussian_per_file_scores_are_reproduced(
        reference: tuple[list[str], list[nab.FileLayout], list[np.ndarray]], profile: str) -> None:
    files, layouts, scores = reference
    table, _ = _published_table(profile)
    assert len(files) == len(table) == 52  # NAB's 58 files less realAdExchange (6 files), absent from the data
    costs = nab.PROFILES[profile]
    for name, layout, s in zip(files, layouts, scores, strict=True):
        row = table[name]
        got = nab.score_file(s, layout, costs, float(row["Threshold"]))
        assert got.score == pytest.approx(float(row["Score"]), abs=1e-9), name
        assert (got.tp, got.tn, got.fp, got.fn, got.total_count) == (
            int(row["TP"]), int(row["TN"]), int(row["FP"]), int(row["FN"]), int(row["Total_Count"])), name


@pytest.mark.parametrize("profile", list(nab.PROFILES))
def test_windowed_gaussian_threshold_sweep_and_normalised_score(
        reference: tuple[list[str], list[nab.FileLayout], list[np.ndarray]], profile: str) -> None:
    _, layouts, scores = reference
    table, totals = _published_table(profile)
    costs = nab.PROFILES[profile]
    threshold, best = nab.sweep(scores, layouts, costs).best()
    # The optimiser finds NAB's published threshold, and its corpus score is the sum of the per-file scores.
    published = json.loads((REF / "thresholds.json").read_text())["windowedGaussian"][profile]
    assert threshold == published["threshold"] == 1.0
    assert best == pytest.approx(sum(float(r["Score"]) for r in table.values()), abs=1e-8)
    # The published normalised score is over NAB's 58 files (116 windows): the Totals row includes the six
    # realAdExchange files that are not in the data. Normalising that total reproduces final_results.json.
    final = json.loads((REF / "final_results.json").read_text())["windowedGaussian"][profile]
    n_windows_58 = 116
    assert sum(lay.n_windows for lay in layouts) == 102  # the 52 files present
    normalised = nab.normalized(float(totals["Score"]), -costs.fn_weight * n_windows_58, costs.tp_weight * n_windows_58)
    assert normalised == pytest.approx(final, abs=1e-9)


def test_window_indices_match_timestamps() -> None:
    ts = np.array(["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:10", "2024-01-01 00:15"], dtype="datetime64[ns]")
    got = nab.window_indices(ts, [("2024-01-01 00:05:00.000000", "2024-01-01 00:10:00.000000")])
    assert got.tolist() == [[1, 2]]


def test_nab_dir_layout() -> None:
    assert Path(NAB_DIR / "profiles.json").exists()
    profiles = json.loads((NAB_DIR / "profiles.json").read_text())
    for name, costs in nab.PROFILES.items():
        m = profiles[name]["CostMatrix"]
        assert (costs.tp_weight, costs.fp_weight, costs.fn_weight) == (m["tpWeight"], m["fpWeight"], m["fnWeight"])
