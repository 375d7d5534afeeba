"""benchmarks/nab.py on a tiny NAB-like folder: files present are scored at the product's threshold, absent
ones are listed, and the score matches one computed by hand from NAB's rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import nab as bench

PROFILES = {"standard": (1.0, 0.11, 1.0), "reward_low_FP_rate": (1.0, 0.22, 1.0),
            "reward_low_FN_rate": (1.0, 0.11, 2.0)}


def sigmoid(x: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def write_folder(root: Path) -> None:
    # 400 five-minute points at 5.0, a spike to 6.0 at 300, in a window of points 290..320.
    stamps = np.datetime64("2024-01-01T00:00:00") + np.arange(400) * np.timedelta64(300, "s")
    (root / "data" / "demo").mkdir(parents=True)
    rows = ["timestamp,value"] + [f"{str(t).replace('T', ' ')},{6.0 if i == 300 else 5.0}"
                                  for i, t in enumerate(stamps)]
    (root / "data" / "demo" / "spike.csv").write_text("\n".join(rows) + "\n")
    windows = {"demo/spike.csv": [[str(stamps[290]).replace("T", " ") + ".000000",
                                   str(stamps[320]).replace("T", " ") + ".000000"]],
               "demo/absent.csv": [["2024-01-01 00:00:00.000000", "2024-01-01 01:00:00.000000"]]}
    (root / "combined_windows.json").write_text(json.dumps(windows))
    (root / "profiles.json").write_text(json.dumps({
        name: {"CostMatrix": {"tpWeight": tp, "fpWeight": fp, "fnWeight": fn, "tnWeight": 1.0}}
        for name, (tp, fp, fn) in PROFILES.items()}))


def test_present_files_are_scored_and_absent_ones_listed(tmp_path: Path) -> None:
    write_folder(tmp_path)
    result = bench.run(tmp_path)
    assert result["n_files"] == 1 and result["n_windows"] == 1
    assert result["files_absent"] == ["demo/absent.csv"]
    assert result["threshold"] == 0.7
    # One detection, at 300, in a window of 31 points ending at 320: A_TP x sigmoid(-(320-300+1)/31),
    # relative to the sigmoid at the window start; normalised against the null (-A_FN) and perfect (A_TP).
    weight = sigmoid(-21 / 31) / sigmoid(-1.0)
    for name, (tp, _fp, fn) in PROFILES.items():
        assert result[name] == pytest.approx(100.0 * (tp * weight + fn) / (tp + fn), abs=1e-9), name


def test_published_outputs_get_their_threshold_from_the_other_half() -> None:
    # Two files of one category: file 0 in one fold, file 1 in the other. Each has one window of 31 points
    # (290..320) in 400 points and one point outside every window before it (no preceding window: a false
    # positive costs the full A_FP). File 0 scores its window start 0.9 and its false point 0.2; file 1 its
    # window start 0.6 and its false point 0.1.
    layout = bench.nab.file_layout(400, [[290, 320]])
    outputs = [np.zeros(400), np.zeros(400)]
    outputs[0][290], outputs[0][100] = 0.9, 0.2
    outputs[1][290], outputs[1][100] = 0.6, 0.1
    corpus = bench.Corpus(names=["c/a.csv", "c/b.csv"], absent=[], timestamps=[], values=[], layouts=[layout, layout],
                          profiles={n: bench.nab.CostMatrix(*w) for n, w in PROFILES.items()})
    result = bench.threshold_cross_validated(outputs, corpus)
    # Swept on file 0 alone, the best threshold is 0.9 (the highest among ties): file 1's 0.6 is missed (-A_FN).
    # Swept on file 1 alone, it is 0.6: file 0's window is detected at its start, its 0.2 is not.
    start = sigmoid(-1.0) / sigmoid(-1.0)
    for name, (tp, _fp, fn) in PROFILES.items():
        raw = tp * start - fn
        assert result[name] == pytest.approx(100.0 * (raw + 2 * fn) / (2 * tp + 2 * fn), abs=1e-9), name
    # In-sample (NAB's sweep over both files) the threshold 0.6 would catch both windows: 100.
    assert bench.swept(outputs, corpus)["standard"]["score"] == pytest.approx(100.0)
