"""Benchmark: kpilot's forecasts on the M4 competition's weekly series, scored as in the M4 paper.

    python benchmarks/m4.py --train Weekly-train.csv --test Weekly-test.csv [--format text|json]
                            [--holdout] [--season N] [--jobs N]

Forecasts 13 weeks for every series and prints sMAPE, MASE and OWA (relative to Naive2, on totals over
the set, as in the M4 paper) for:
  - the M4 benchmarks as kpilot implements them, with the M4 convention for weekly data (no season):
    Naive2 (= Naive for weekly data), SES, Theta, Damped (ETS with a damped trend) — their published
    figures check the scoring and the implementations; `combination` is the mean of SES, Damped, Theta;
  - `kpilot_all`: `kpilot.analysis.forecast.forecast(y, 13, season=52, window=260)` with its default
    candidates, each backtested on the series' own last weeks (rolling origin), the best one kept per
    series;
  - `kpilot`: the same restricted to the smoothing candidates (`--methods`, default ses, ets_damped,
    theta, combination). Season 52, the 260-week window and this restriction were chosen on the
    training file's last 13 weeks (`--holdout`), not on the test set.
The top-level JSON keys `smape`, `mase`, `owa`, `n_series` are those of `kpilot`; `methods` holds all rows.
`--holdout` scores on the training file alone: the last 13 weeks of each training series are held out
(the way to compare choices without looking at the M4 test set).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kpilot.analysis.forecast import COMBINED, forecast
from kpilot.analysis.forecast_models import ets_damped, mase, naive, ses, smape, theta

HORIZON = 13
ROWS = ("naive2", "ses", "theta", "ets_damped", "combination", "kpilot_all", "kpilot")
M4_METHODS = ("ses", "ets_damped", "theta", "combination")


def read_series(path: str) -> dict[str, np.ndarray]:
    out = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            out[row[0]] = np.array([float(x) for x in row[1:] if x != ""])
    return out


def one_series(args: tuple[np.ndarray, int | None, int | None, tuple[str, ...]]) -> tuple[dict[str, list[float]], str]:
    """Every row's forecast of one series, and the method kpilot chose."""
    y, season, window, methods = args
    fc: dict[str, np.ndarray] = {"naive2": naive(y, HORIZON)}  # M4 weekly: no seasonal adjustment
    for name, model in (("ses", ses), ("theta", theta), ("ets_damped", ets_damped)):
        f = model(y, HORIZON)
        fc[name] = f if f is not None else fc["naive2"]
    fc["combination"] = np.mean([fc[c] for c in COMBINED], axis=0)
    fc["kpilot_all"] = np.array([p.value for p in forecast(y, HORIZON, season=season, window=window).points])
    product = forecast(y, HORIZON, season=season, window=window, methods=methods)
    fc["kpilot"] = np.array([p.value for p in product.points])
    return {k: [float(x) for x in v] for k, v in fc.items()}, product.method


def score(train: dict[str, np.ndarray], test: dict[str, np.ndarray], fcs: list[dict[str, list[float]]]) -> dict:
    keys = list(test)
    res: dict[str, dict[str, float]] = {}
    for row in ROWS:
        s = float(np.mean([smape(test[k], f[row]) for k, f in zip(keys, fcs, strict=True)]))
        m = float(np.mean([mase(train[k], test[k], f[row], 1) for k, f in zip(keys, fcs, strict=True)]))
        res[row] = {"smape": s, "mase": m}
    base = res["naive2"]
    for r in res.values():
        r["owa"] = 0.5 * (r["smape"] / base["smape"] + r["mase"] / base["mase"])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--format", choices=("text", "json"), default="text")
    ap.add_argument("--holdout", action="store_true", help="score on the last 13 weeks of the training file")
    ap.add_argument("--season", type=int, default=52, help="season given to kpilot's forecast(); 0 for none")
    ap.add_argument("--window", type=int, default=260, help="weeks of history kpilot's forecast() keeps; 0: all")
    ap.add_argument("--methods", default=",".join(M4_METHODS), help="candidates of the `kpilot` row")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="only the first N series")
    a = ap.parse_args()

    train = read_series(a.train)
    test = {k: v[:HORIZON] for k, v in read_series(a.test).items()}
    if a.holdout:
        test = {k: v[-HORIZON:] for k, v in train.items()}
        train = {k: v[:-HORIZON] for k, v in train.items()}
    keys = list(test)[: a.limit] if a.limit else list(test)
    train, test = {k: train[k] for k in keys}, {k: test[k] for k in keys}

    t0 = time.perf_counter()
    methods = tuple(m for m in a.methods.split(",") if m)
    work = [(train[k], a.season or None, a.window or None, methods) for k in keys]
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as pool:
            results = list(pool.map(one_series, work, chunksize=4))
    else:
        results = [one_series(w) for w in work]
    seconds = time.perf_counter() - t0
    fcs = [r[0] for r in results]
    chosen = Counter(r[1] for r in results)
    res = score(train, test, fcs)
    out = {**res["kpilot"], "n_series": len(keys), "seconds": round(seconds, 1), "jobs": a.jobs,
           "holdout": a.holdout, "season": a.season or None, "window": a.window or None, "kpilot_methods": list(methods), "methods": res, "kpilot_chose": dict(chosen.most_common())}
    if a.format == "json":
        print(json.dumps(out, indent=2))
        return
    what = "last 13 weeks of the training file" if a.holdout else "M4 test set"
    print(f"M4 weekly, {len(keys)} series, horizon {HORIZON}, scored on the {what}; "
          f"wall time {seconds:.1f} s with {a.jobs} process(es); kpilot: season {a.season or None}, "
          f"window {a.window or None}, "
          f"candidates {', '.join(methods)}")
    print(f"{'method':<14}{'sMAPE':>9}{'MASE':>9}{'OWA':>9}")
    for row in ROWS:
        r = res[row]
        print(f"{row:<14}{r['smape']:>9.3f}{r['mase']:>9.3f}{r['owa']:>9.3f}")
    print("kpilot chose: " + ", ".join(f"{k} {v}" for k, v in chosen.most_common()))


if __name__ == "__main__":
    main()
