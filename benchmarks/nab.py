"""Benchmark: kpilot's anomaly detector on the Numenta Anomaly Benchmark (NAB), scored by kpilot's NAB scorer.

    python benchmarks/nab.py --data ../shared/data/nab [--results NAB/results] [--cross-validate] [--format json]

DIR is laid out like NAB: data/<category>/<file>.csv (timestamp,value), combined_windows.json,
profiles.json (cost matrices) and, optionally, reference/final_results.json (published normalised
scores of other detectors, printed alongside) and reference/windowedGaussian (NAB's outputs of that
detector). Every file of combined_windows.json whose CSV is present is scored; absent ones are listed.

The detector runs on every file with its timestamps and the product's defaults: one parameter set and
the product's fixed threshold (`kpilot.analysis.anomaly.DEFAULT_THRESHOLD`) for the whole corpus. That is
the headline. NAB's own procedure also sweeps the threshold per profile over the corpus; that figure is
printed apart, labelled as tuned on NAB. The record detector's tolerances and quiet period were chosen on
these files too (see src/kpilot/analysis/anomaly_records.py): `--cross-validate` re-chooses the tolerances
on one half of the files (coordinate descent from nothing, standard profile) and scores the other half,
both ways, to show what that tuning is worth on files it did not see.

`--results` points at a NAB checkout's results/ folder: the published outputs of numenta (HTM), ARTime
and contextOSE (CAD OSE) are then scored on the very files present, thresholds swept as NAB does; with
`--cross-validate` too, each one's threshold is also chosen on one half of the files and the other half
scored at it, the same held-out test as kpilot's.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kpilot.analysis import anomaly_records, nab
from kpilot.analysis.anomaly import DEFAULT_THRESHOLD, anomaly_scores, method_for, season_from_timestamps

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
PUBLISHED = ("numenta", "ARTime", "contextOSE")  # outputs scored on the same files with --results
CV_GRID = (None, *np.round(np.geomspace(0.001, 1.0, 40), 5))  # tolerances tried; None: the view is off
CV_ROUNDS = 3


@dataclass(frozen=True)
class Corpus:
    names: list[str]
    absent: list[str]
    timestamps: list[np.ndarray]
    values: list[np.ndarray]
    layouts: list[nab.FileLayout]
    profiles: dict[str, nab.CostMatrix]


def read_series(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    ts = np.array([r["timestamp"] for r in rows], dtype="datetime64[ns]")
    values = np.array([float(r["value"]) if r["value"] not in ("", "nan", "NaN") else np.nan for r in rows])
    return ts, values


def load(data: Path) -> Corpus:
    windows = json.loads((data / "combined_windows.json").read_text())
    profiles_raw = json.loads((data / "profiles.json").read_text())
    profiles = {name: nab.CostMatrix(tp_weight=p["CostMatrix"]["tpWeight"], fp_weight=p["CostMatrix"]["fpWeight"],
                                     fn_weight=p["CostMatrix"]["fnWeight"]) for name, p in profiles_raw.items()}
    names = [n for n in sorted(windows) if (data / "data" / n).exists()]
    absent = [n for n in sorted(windows) if not (data / "data" / n).exists()]
    stamps, values, layouts = [], [], []
    for name in names:
        ts, x = read_series(data / "data" / name)
        stamps.append(ts)
        values.append(x)
        layouts.append(nab.file_layout(len(x), nab.window_indices(ts, windows[name])))
    return Corpus(names, absent, stamps, values, layouts, profiles)


def normalized(raw: float, layouts: list[nab.FileLayout], costs: nab.CostMatrix) -> float:
    return nab.normalized(raw, nab.null_score(layouts, costs), nab.perfect_score(layouts, costs))


def at_threshold(scores: list[np.ndarray], layouts: list[nab.FileLayout], costs: nab.CostMatrix,
                 threshold: float) -> float:
    """Normalised corpus score at one fixed threshold."""
    raw = sum(nab.score_file(s, lay, costs, threshold).score for s, lay in zip(scores, layouts, strict=True))
    return normalized(raw, layouts, costs)


def swept(scores: list[np.ndarray], corpus: Corpus) -> dict[str, dict[str, float]]:
    """NAB's procedure: per profile, the threshold that maximises the corpus score, and that score."""
    out = {}
    for pname in PROFILES:
        costs = corpus.profiles[pname]
        threshold, raw = nab.sweep(scores, corpus.layouts, costs).best()
        out[pname] = {"threshold": threshold, "score": normalized(raw, corpus.layouts, costs)}
    return out


def published_outputs(root: Path, detector: str, names: list[str]) -> list[np.ndarray] | None:
    """A detector's published per-file outputs (anomaly_score column), or None when any file lacks one."""
    out = []
    for name in names:
        category, base = name.split("/")
        path = root / detector / category / f"{detector}_{base}"
        if not path.exists():
            return None
        with path.open(newline="") as f:
            out.append(np.array([float(r["anomaly_score"]) for r in csv.DictReader(f)]))
    return out


def folds(names: list[str]) -> tuple[list[int], list[int]]:
    """The two folds of the cross-validation: alternate files within each category (file order as given)."""
    by_category: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_category.setdefault(name.split("/")[0], []).append(i)
    return ([i for ids in by_category.values() for i in ids[0::2]],
            [i for ids in by_category.values() for i in ids[1::2]])


def threshold_cross_validated(outputs: list[np.ndarray], corpus: Corpus) -> dict[str, float]:
    """A published detector held to the same test as kpilot's `cross_validate`: per profile, its threshold
    swept on one fold (NAB's procedure on half the files), the other fold scored at that threshold, both ways,
    pooled. Only the threshold is re-chosen: its model's own parameters stay as published."""
    out = {}
    for pname in PROFILES:
        costs = corpus.profiles[pname]
        pooled = 0.0
        for train, test in (folds(corpus.names), folds(corpus.names)[::-1]):
            threshold, _ = nab.sweep([outputs[i] for i in train], [corpus.layouts[i] for i in train], costs).best()
            pooled += sum(nab.score_file(outputs[i], corpus.layouts[i], costs, threshold).score for i in test)
        out[pname] = normalized(pooled, corpus.layouts, costs)
    return out


def cross_validate(corpus: Corpus) -> dict[str, object]:
    """Two folds (alternate files within each category): tolerances chosen by coordinate descent on one
    fold, then the other fold scored with them at the product's threshold; pooled over both test folds."""
    exceeded = []
    for ts, x in zip(corpus.timestamps, corpus.values, strict=True):
        if method_for(ts) != "records":
            raise SystemExit("--cross-validate expects intraday files (the record detector)")
        exceeded.append(anomaly_records.exceedances(x, season_from_timestamps(ts)))
    views = list(anomaly_records.TOLERANCES)
    halves = folds(corpus.names)

    def raw_scores(tolerances: dict[str, float | None], files: list[int], costs: nab.CostMatrix) -> float:
        tol = {v: (np.inf if t is None else t) for v, t in tolerances.items()}
        return sum(nab.score_file(anomaly_records.ratio_of(exceeded[i], tol), corpus.layouts[i], costs, 1.0).score
                   for i in files)

    def tune(files: list[int]) -> dict[str, float | None]:
        costs = corpus.profiles["standard"]
        tolerances: dict[str, float | None] = dict.fromkeys(views)
        best = raw_scores(tolerances, files, costs)
        for _ in range(CV_ROUNDS):
            changed = False
            for view in views:
                for t in CV_GRID:
                    trial = {**tolerances, view: None if t is None else float(t)}
                    s = raw_scores(trial, files, costs)
                    if s > best + 1e-9:
                        best, tolerances, changed = s, trial, True
            if not changed:
                break
        return tolerances

    result: dict[str, object] = {}
    pooled = dict.fromkeys(PROFILES, 0.0)
    for k, (train, test) in enumerate((halves, halves[::-1])):
        tolerances = tune(list(train))
        fold: dict[str, object] = {"tolerances": tolerances}
        for pname in PROFILES:
            costs = corpus.profiles[pname]
            test_raw = raw_scores(tolerances, list(test), costs)
            pooled[pname] += test_raw
            fold[pname] = {"train": normalized(raw_scores(tolerances, list(train), costs),
                                               [corpus.layouts[i] for i in train], costs),
                           "test": normalized(test_raw, [corpus.layouts[i] for i in test], costs)}
        result[f"fold_{k + 1}"] = fold
    result["pooled_test"] = {p: normalized(pooled[p], corpus.layouts, corpus.profiles[p]) for p in PROFILES}
    return result


def run(data: Path, results: Path | None = None, cv: bool = False) -> dict[str, object]:
    t0 = time.perf_counter()
    corpus = load(data)
    t1 = time.perf_counter()
    scores = [anomaly_scores(x, timestamps=ts) for ts, x in zip(corpus.timestamps, corpus.values, strict=True)]
    t2 = time.perf_counter()
    out: dict[str, object] = {p: at_threshold(scores, corpus.layouts, corpus.profiles[p], DEFAULT_THRESHOLD)
                              for p in PROFILES}
    out["threshold"] = DEFAULT_THRESHOLD
    out["swept_tuned_on_nab"] = swept(scores, corpus)
    t3 = time.perf_counter()
    references: dict[str, dict[str, dict[str, float]]] = {}
    held_out: dict[str, dict[str, float]] = {}
    found = {"windowedGaussian": published_outputs(data / "reference", "windowedGaussian", corpus.names)}
    if results is not None:
        found.update({detector: published_outputs(results, detector, corpus.names) for detector in PUBLISHED})
    for detector, outputs in found.items():
        if outputs is not None:
            references[detector] = swept(outputs, corpus)
            if cv:
                held_out[detector] = threshold_cross_validated(outputs, corpus)
    out["same_files_published_outputs"] = references
    if cv:
        out["published_outputs_threshold_cross_validated"] = held_out
    if cv:
        out["cross_validation"] = cross_validate(corpus)
    t4 = time.perf_counter()
    out.update({
        "n_files": len(corpus.names), "files_absent": corpus.absent,
        "n_points": sum(len(x) for x in corpus.values), "n_windows": sum(lay.n_windows for lay in corpus.layouts),
        "seconds": {"read": round(t1 - t0, 3), "detect": round(t2 - t1, 3), "score_and_sweep": round(t3 - t2, 3),
                    "references_and_cv": round(t4 - t3, 3), "total": round(t4 - t0, 3)},
    })
    return out


def row(label: str, figures: dict[str, float] | dict[str, dict[str, float]], note: str = "") -> str:
    vals = [f[p]["score"] if isinstance(f := figures, dict) and isinstance(f[p], dict) else f[p]  # type: ignore[index]
            for p in PROFILES]
    return f"{label:<50}" + "".join(f"{v:>10.1f}" for v in vals) + (f"   {note}" if note else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder laid out like NAB")
    ap.add_argument("--results", type=Path, help="NAB's results/ folder: score published detectors on these files")
    ap.add_argument("--cross-validate", action="store_true", help="two-fold re-tuning of the tolerances (about a minute)")
    ap.add_argument("--format", choices=["text", "json"], default="text")
    args = ap.parse_args()
    if not (args.data / "combined_windows.json").exists():
        raise SystemExit(f"{args.data}: no combined_windows.json; --data must point at a folder laid out like NAB")
    result = run(args.data, args.results, args.cross_validate)
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    secs = result["seconds"]
    absent = result["files_absent"]
    print(f"NAB: {result['n_files']} files, {result['n_points']:,} points, {result['n_windows']} windows"
          + (f" (absent from the folder: {', '.join(absent)})" if absent else "")  # type: ignore[arg-type]
          + f"; wall time {secs['total']} s (detect {secs['detect']} s)")  # type: ignore[index]
    header = f"{'detector':<50}{'standard':>10}{'low FP':>10}{'low FN':>10}"
    print(header)
    print("-" * len(header))
    print(row(f"kpilot, product threshold {DEFAULT_THRESHOLD}", result))  # type: ignore[arg-type]
    sw = result["swept_tuned_on_nab"]
    print(row("kpilot, threshold swept (tuned on NAB)", sw,  # type: ignore[arg-type]
              "thresholds " + ", ".join(f"{sw[p]['threshold']:.3f}" for p in PROFILES)))  # type: ignore[index]
    cv = result.get("cross_validation")
    if cv:
        print(row("kpilot, 2-fold cross-validation (pooled test)", cv["pooled_test"]))  # type: ignore[index]
        for k in (1, 2):
            fold = cv[f"fold_{k}"]  # type: ignore[index]
            print(f"  fold {k}: standard {fold['standard']['train']:.1f} on its training half, "
                  f"{fold['standard']['test']:.1f} on its test half")
    for name, figures in result["same_files_published_outputs"].items():  # type: ignore[attr-defined]
        print(row(f"{name}* (its published outputs, swept)", figures))
    for name, figures in result.get("published_outputs_threshold_cross_validated", {}).items():  # type: ignore[attr-defined]
        print(row(f"{name}* (threshold from the other half)", figures))
    ref = args.data / "reference" / "final_results.json"
    if ref.exists():
        published = json.loads(ref.read_text())
        for name in ("ARTime", "numenta", "contextOSE", "twitterADVec", "windowedGaussian"):
            if name in published:
                print(row(f"{name} (published, NAB's 58 files)", published[name]))
    print("(* = scored here on the same files; the published rows are on NAB's 58 files, thresholds swept)")


if __name__ == "__main__":
    main()
