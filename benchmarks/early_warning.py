"""Early warning on acme: how many weeks before won revenue turns red does the September 2026 demo dip warn?

The lead-lag edges are learned on the data up to a training date (default: the end of July 2026, before
the dip), as `kpilot leads --as-of` would have stored them then; the warning system then runs at the end
of every following week on the data known at that time. Won revenue has no target in acme: it is given
the target "sign as much every week as in the first half of 2026" (its mean weekly value over the
complete weeks of 2026-01 to 2026-06), judged with the default bands (red under 90 %). It "turns red"
when two weeks in a row are red, as a `{status: red, periods: 2}` rule would see it.

    python benchmarks/early_warning.py [--workspace DIR] [--train-until 2026-08-02] [--format json]

False warnings on random data (`--null`): a leader and a KPI drawn as independent noise, an edge said to lead
the KPI by 3 periods anyway, the target at the KPI's mean (a coin flip, the hardest case: any lower target
gives none). Counted per series: at the KPI's own grain (`early_warning.early_warnings`, its next 3 periods),
and with the KPI monthly and the edge weekly (`early_warning.rolled_up_warnings`, a month made of one known
week and the three projected ones).

    python benchmarks/early_warning.py --null [--seeds 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kpilot.analysis import leadlag, warning  # noqa: E402
from kpilot.insights import Insights  # noqa: E402
from kpilot.model import Grain  # noqa: E402
from kpilot.service import WorkspaceService  # noqa: E402

DEFAULT_ACME = Path(os.environ.get("KPILOT_SHARED", ROOT.parent / "shared")) / "examples" / "acme"


def scenario(workspace: Path, train_until: date, dip_from: date, state_dir: Path) -> dict[str, object]:
    with WorkspaceService(workspace, state_dir=state_dir) as svc:
        ins = Insights(svc)
        leaders, _ = ins.candidates()
        data = ins.aligned([*leaders, "won_revenue"], Grain.week)
    periods = data.periods
    y = data.values["won_revenue"]
    first_half = [v for p, v in zip(periods, y, strict=True) if date(2026, 1, 1) <= p and p.month <= 6
                  and p.year == 2026 and np.isfinite(v)]
    target = float(np.mean(first_half))
    train_end = max(i for i, p in enumerate(periods) if p <= train_until and (p - train_until).days <= -6)
    seen = {k: v[:train_end + 1] for k, v in data.values.items()}
    edges = leadlag.discover(seen, leaders, ["won_revenue"], max_lag=12)
    targets: list[float | None] = [target] * (len(periods) + 12)
    start = next(i for i, p in enumerate(periods) if p >= dip_from)
    runs = warning.replay("won_revenue", data.values, edges, targets, train_end + 1, direction="up", amber=0.9)
    timeline = []
    first_warning: int | None = None
    for c, found in runs:
        from_dip = [w for w in found if w.leader in ("demos_booked", "pipeline_generated")
                    and periods[w.leader_period] >= dip_from]
        if from_dip and first_warning is None:
            first_warning = c
        timeline.append({"week": periods[c].isoformat(), "won_revenue": float(y[c]),
                         "achievement": float(y[c] / target),
                         "warnings": [{"leader": w.leader, "leader_week": periods[w.leader_period].isoformat(),
                                       "leader_change": round(w.leader_change, 3), "weeks_ahead": w.period - c,
                                       "projected": round(w.projected), "confidence": round(w.confidence, 2)}
                                      for w in found]})
    red = warning.first_red_run(y, targets, start, direction="up", amber=0.9)
    first_red = next((i for i in range(start, len(y)) if y[i] / target < 0.9), None)
    weeks = (red - first_warning) if red is not None and first_warning is not None else None
    return {
        "target": target, "train_until": periods[train_end].isoformat(),
        "edges": [e.to_dict() for e in edges],
        "first_warning_week": periods[first_warning].isoformat() if first_warning is not None else None,
        "first_red_week": periods[first_red].isoformat() if first_red is not None else None,
        "turns_red_week": periods[red].isoformat() if red is not None else None,
        "weeks_earlier": weeks,
        "weeks_earlier_than_first_red_week": (first_red - first_warning) if first_red is not None
        and first_warning is not None else None,
        "timeline": timeline,
    }


@dataclass(frozen=True)
class _Edge:
    leader: str
    follower: str
    lag: int
    correlation: float


def null_rates(seeds: int) -> dict[str, float]:
    """Share of random series that raise a warning, at the KPI's grain and rolled up into its month."""
    own = rolled = 0
    edge = [_Edge("lead", "kpi", 3, 0.5)]
    month = warning.CoarsePeriod(((103, 1.0), (104, 1.0), (105, 1.0), (106, 1.0)), 800.0)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        lead = 100 + rng.normal(0, 5, 104)
        kpi = 200 + rng.normal(0, 10, 104)
        own += bool(warning.early_warnings("kpi", kpi, {"lead": lead}, edge, [200.0] * 3, direction="up",
                                           amber=0.9))
        rolled += bool(warning.rolled_up_warnings("kpi", kpi, {"lead": lead}, edge, [month], direction="up",
                                                  amber=0.9))
    return {"seeds": seeds, "own_grain": own / seeds, "rolled_up": rolled / seeds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=DEFAULT_ACME)
    parser.add_argument("--train-until", type=date.fromisoformat, default=date(2026, 8, 2))
    parser.add_argument("--dip-from", type=date.fromisoformat, default=date(2026, 8, 3))
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--null", action="store_true", help="false warnings on random data instead of acme")
    parser.add_argument("--seeds", type=int, default=1000)
    args = parser.parse_args()
    if args.null:
        rates = null_rates(args.seeds)
        if args.format == "json":
            print(json.dumps(rates, indent=2))
        else:
            print(f"false warnings on {args.seeds} random series, target at the mean: "
                  f"{rates['own_grain']:.1%} at the KPI's grain, {rates['rolled_up']:.1%} rolled up from weeks")
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = scenario(args.workspace, args.train_until, args.dip_from, Path(tmp))
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    print(f"won revenue target (mean week of 2026 H1): {result['target']:,.0f} EUR; red under 90 %")
    print(f"edges learned on data through {result['train_until']}:")
    for e in result["edges"]:  # type: ignore[attr-defined]
        print(f"  {e['leader']} -> {e['follower']}: lag {e['lag']} weeks, r={e['correlation']:.2f}, "
              f"adjusted p={e['p_value']:.3f}")
    for row in result["timeline"]:  # type: ignore[attr-defined]
        flags = "; ".join(f"{w['leader']} ({w['leader_week']}, {w['leader_change']:+.0%}) -> "
                          f"+{w['weeks_ahead']} wk {w['projected']:,} ({w['confidence']:.0%})" for w in row["warnings"])
        print(f"  {row['week']}  won {row['won_revenue']:>9,.0f} ({row['achievement']:>4.0%})  {flags}")
    print(f"first warning from the dip: week of {result['first_warning_week']}")
    print(f"first red week: {result['first_red_week']}; turns red (2 red weeks in a row) from the week of "
          f"{result['turns_red_week']}")
    print(f"warned {result['weeks_earlier']} weeks before won revenue turned red "
          f"({result['weeks_earlier_than_first_red_week']} weeks before its first red week)")


if __name__ == "__main__":
    main()
