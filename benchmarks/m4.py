"""Benchmark: kpilot's forecasts on the M4 competition's weekly series, scored as in the M4 paper.

    python benchmarks/m4.py --train Weekly-train.csv --test Weekly-test.csv [--format text|json]
                            [--holdout N] [--jobs N] [--limit N]

Forecasts 13 weeks for every series and prints sMAPE, MASE and OWA (relative to Naive2, on the set's means, as
in the M4 paper) for:
  - the M4 benchmarks as kpilot implements them, with the M4 convention for weekly data (no season, the whole
    history): Naive2 (= Naive for weekly data), SES, Theta, Damped (ETS with a damped trend). Their published
    figures check the scoring and the implementations;
  - `kpilot`: the product's defaults, exactly what `kpilot forecast` runs on a weekly KPI: `product_forecast`
    below calls `kpilot.analysis.forecast.forecast(y, 13, season=SEASON[week])` with nothing else set (a
    test checks that `kpilot forecast` gives the same forecast). Its `coverage80` is the share of the test
    weeks inside its 80 % interval; `backtest_coverage80` the mean of the coverage each forecast reported from
    its own backtest (what the product shows as evidence), to compare with it.
The product's defaults were chosen on the training files' last 13 and 26 weeks (`--holdout 1`, `--holdout 2`),
never on the test set: the window (156, 260, 520 weeks tried), the combination rule (pick the best, mean of the
best 2 or 3, inverse-error weights) and the number of backtest origins (12, 24). No variant tuned on the test set
is reported. The top-level JSON keys `smape`, `mase`, `owa`, `n_series`, `coverage80` are those of `kpilot`;
`methods` holds every row.
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
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kpilot.analysis.forecast import Forecast, forecast
from kpilot.analysis.forecast_models import ets_damped, mase, naive, ses, smape, theta

HORIZON = 13
ROWS = ("naive2", "ses", "theta", "ets_damped", "kpilot")
BEST_M4_WEEKLY = 0.751  # OWA of the competition's best weekly entry (submission 036, published_accuracy.csv)


def weekly_season() -> int | None:
    """The season `kpilot forecast` gives a weekly KPI (kpilot.insights.SEASON)."""
    from kpilot.insights import SEASON
    from kpilot.model import Grain

    return SEASON[Grain.week]


def product_forecast(y: np.ndarray, horizon: int = HORIZON, season: int | None = None) -> Forecast:
    """The product's forecast of a weekly series: the defaults of `kpilot forecast`, nothing tuned here."""
    return forecast(y, horizon, season=weekly_season() if season is None else season)


def read_series(path: str) -> dict[str, np.ndarray]:
    out = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            out[row[0]] = np.array([float(x) for x in row[1:] if x != ""])
    return out


def one_series(args: tuple[np.ndarray, int]) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Every row's forecast of one series, and what the product's forecast said of itself."""
    y, season = args
    fc: dict[str, np.ndarray] = {"naive2": naive(y, HORIZON)}  # M4 weekly: no seasonal adjustment
    for name, model in (("ses", ses), ("theta", theta), ("ets_damped", ets_damped)):
        f = model(y, HORIZON)
        fc[name] = f if f is not None else fc["naive2"]
    product = product_forecast(y, HORIZON, season)
    fc["kpilot"] = np.array([p.value for p in product.points])
    info = {"method": product.method, "lower": [p.lower for p in product.points],
            "upper": [p.upper for p in product.points], "coverage": product.coverage,
            "relative_error": product.relative_error}
    return {k: [float(x) for x in v] for k, v in fc.items()}, info


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
    ap.add_argument("--holdout", type=int, default=0,
                    help="score on the training file alone: hold out its last N*13 weeks, score the first 13 of them")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="only the first N series")
    a = ap.parse_args()

    train = read_series(a.train)
    test = {k: v[:HORIZON] for k, v in read_series(a.test).items()}
    if a.holdout:
        cut = a.holdout * HORIZON
        test = {k: v[len(v) - cut :][:HORIZON] for k, v in train.items()}
        train = {k: v[:-cut] for k, v in train.items()}
    keys = list(test)[: a.limit] if a.limit else list(test)
    train, test = {k: train[k] for k in keys}, {k: test[k] for k in keys}

    season = weekly_season()
    t0 = time.perf_counter()
    work = [(train[k], season) for k in keys]
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as pool:
            results = list(pool.map(one_series, work, chunksize=4))
    else:
        results = [one_series(w) for w in work]
    seconds = time.perf_counter() - t0
    fcs = [r[0] for r in results]
    infos = [r[1] for r in results]
    res = score(train, test, fcs)
    inside = [(np.array(i["lower"]) <= test[k]) & (test[k] <= np.array(i["upper"])) for k, i in zip(keys, infos,
                                                                                                    strict=True)]
    coverage = float(np.mean(np.concatenate(inside)))
    reported = [i["coverage"] for i in infos if i["coverage"] == i["coverage"]]
    out = {**res["kpilot"], "n_series": len(keys), "coverage80": coverage,
           "backtest_coverage80": float(np.mean(reported)) if reported else None,
           "best_m4_weekly_owa": BEST_M4_WEEKLY, "seconds": round(seconds, 1), "jobs": a.jobs,
           "holdout": a.holdout, "season": season, "methods": res,
           "kpilot_method": dict(Counter(i["method"] for i in infos).most_common())}
    if a.format == "json":
        print(json.dumps(out, indent=2))
        return
    what = f"week {a.holdout * HORIZON} to {a.holdout * HORIZON - HORIZON + 1} before the end of the training file" \
        if a.holdout else "M4 test set"
    print(f"M4 weekly, {len(keys)} series, horizon {HORIZON}, scored on the {what}; wall time {seconds:.1f} s "
          f"with {a.jobs} process(es). kpilot: the product's defaults (season {season}).")
    print(f"{'method':<14}{'sMAPE':>9}{'MASE':>9}{'OWA':>9}")
    for row in ROWS:
        r = res[row]
        print(f"{row:<14}{r['smape']:>9.3f}{r['mase']:>9.3f}{r['owa']:>9.3f}")
    print(f"best M4 weekly entry: OWA {BEST_M4_WEEKLY} (on all 359 series)")
    print(f"kpilot's 80 % interval held {coverage:.1%} of the {sum(len(v) for v in inside)} test weeks; "
          f"its backtests had reported {out['backtest_coverage80']:.1%} on average")
    print("kpilot's method: " + ", ".join(f"{k} {v}" for k, v in out["kpilot_method"].items()))


if __name__ == "__main__":
    main()
