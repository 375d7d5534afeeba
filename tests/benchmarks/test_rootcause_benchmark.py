"""benchmarks/rootcause.py scores a hand-made folder with a known answer, and runs without the label file."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "rootcause.py"
SIZES = {"a": 4, "b": 3, "c": 2}


def case_text(planted: dict[str, str], factor: float, seed: int) -> str:
    """A case: every leaf of a(4) x b(3) x c(2), predict with 2 % noise, real moved by `factor` under `planted`."""
    rng = np.random.default_rng(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*SIZES, "real", "predict"])
    for leaf in itertools.product(*([f"{d}{i}" for i in range(1, n + 1)] for d, n in SIZES.items())):
        predict = 50 + 100 * rng.random()
        real = predict * (1 + rng.normal(0, 0.02))
        if all(leaf[list(SIZES).index(d)] == v for d, v in planted.items()):
            real = predict * factor
        writer.writerow([*leaf, repr(real), repr(predict)])
    return out.getvalue()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "cases"
    data.mkdir()
    (data / "101.csv").write_text(case_text({"a": "a1"}, 0.5, 1))
    (data / "102.csv.gz").write_bytes(gzip.compress(case_text({"b": "b2", "c": "c1"}, 0.2, 2).encode()))
    (data / "103.csv").write_text(case_text({"a": "a2"}, 0.4, 3))
    # 101: found. 102: found (pairs in another order), plus a true element that never moved: a miss.
    # 103: the move is all of a2, the label says a2 & b1 only: a false positive and a miss. 104: no file, a miss.
    (data / "injection_info.csv").write_text(
        "timestamp,set,noise_level\n101,a=a1,0.02\n102,c=c1&b=b2;a=a3&b=b1,0.02\n103,a=a2&b=b1,0.02\n104,b=b3,0.02\n")
    return data


def test_the_scores_are_counted_over_the_folder(folder: Path, tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.json"
    r = run("--data", str(folder), "--format", "json", "--predictions", str(predictions))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert json.loads(predictions.read_text()) == {"101.csv": ["a=a1"], "102.csv": ["b=b2&c=c1"], "103.csv": ["a=a2"]}
    by_case = {c["case"]: (c["tp"], c["fp"], c["fn"]) for c in out["cases"]}
    assert by_case == {"101": (1, 0, 0), "102": (1, 0, 1), "103": (0, 1, 1), "104": (0, 0, 1)}
    assert out["absent"] == ["104"]
    assert (out["tp"], out["fp"], out["fn"]) == (2, 1, 3)
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(2 / 5)
    assert out["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 3))  # 0.5
    table = run("--data", str(folder))
    assert table.returncode == 0, table.stderr
    assert "F1 0.500  precision 0.667  recall 0.400  (tp 2, fp 1, fn 3, micro over the folder)" in table.stdout


def test_without_the_label_file_the_cases_run_unscored(folder: Path) -> None:
    (folder / "injection_info.csv").unlink()
    r = run("--data", str(folder))
    assert r.returncode == 0, r.stderr
    assert "not scored: no injection_info.csv" in r.stdout
    assert "b=b2&c=c1" in r.stdout and "F1" not in r.stdout
    out = json.loads(run("--data", str(folder), "--format", "json").stdout)
    assert out["scored"] is False and out["f1"] is None
    assert [c["predicted"] for c in out["cases"]] == [["a=a1"], ["b=b2&c=c1"], ["a=a2"]]


def test_bad_input_gets_a_clear_error(folder: Path, tmp_path: Path) -> None:
    (folder / "105.csv").write_text("a,b,real,predict\na1,b1,12.5,x\n")
    r = run("--data", str(folder))
    assert r.returncode == 2
    assert "105.csv, line 2: real and predict must be numbers, got '12.5' and 'x'" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("--data", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "is not a folder" in r.stderr
