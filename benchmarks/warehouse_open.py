"""Benchmark: what opening the warehouse on each request costs the web server, against a connection kept open.

    python3 benchmarks/warehouse_open.py [--rounds 8] [--block 3] [--workspace examples/acme]

The web server lets go of the warehouse between requests so that the CLI can run beside it (docs/web.md,
"Running the CLI beside the server"): the first request after a quiet moment opens the DuckDB file again, with
DuckDB's caches empty. This measures that, on the acme workspace loaded into a temporary state folder, through
the web's own `WorkspaceGate` with its answer cache off (every request computes):

  - opened per request (as shipped): nothing else holds the warehouse, so each request opens and closes it;
  - kept open: the same requests while another user of the gate holds the warehouse open (a pool of 2 services
    in both cases, so that the holder does not block the requests).

The two run side by side, in alternating blocks (so that a change of load on the machine hits both); the
medians and the fastest times are printed with their ratios (on a busy machine the fastest times are the steadier
measure). The first lines are the open and close alone, and a one-row query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACME = Path(os.environ.get("KPILOT_SHARED", ROOT.parent / "shared")) / "examples" / "acme"
AS_OF = date(2026, 11, 15)


def _ms(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=ACME)
    parser.add_argument("--rounds", type=int, default=8, help="alternating blocks of each set-up")
    parser.add_argument("--block", type=int, default=3, help="requests per block")
    args = parser.parse_args()

    from kpilot.compute.engine import connect_duckdb
    from kpilot.model.periods import period_start
    from kpilot.web.state import WorkspaceGate

    with tempfile.TemporaryDirectory() as tmp:
        gate = WorkspaceGate(args.workspace, state_dir=Path(tmp), pool_size=2, cache_size=0)
        gate.refresh()  # the load, as `kpilot serve` does before its first request
        warehouse = Path(tmp) / "warehouse.duckdb"
        ws = gate.primary.ws
        kpi = ws.board[0] if ws.board else ws.metrics[0].key
        dimension = gate.dimensions(kpi, AS_OF)[0]
        period = gate.current_period(kpi, AS_OF)

        def raw_open() -> None:
            connect_duckdb(warehouse).close()

        def raw_query(con: object = None) -> None:
            c = con or connect_duckdb(warehouse)
            c.execute("SELECT count(*) FROM information_schema.tables").fetchall()  # type: ignore[attr-defined]
            if con is None:
                c.close()  # type: ignore[attr-defined]

        def kpi_page() -> object:
            """The answers the KPI page asks the gate for, computed together as the page's render does."""
            before = period_start(period - timedelta(days=1), ws.metric(kpi).grain, ws.week_start)
            return (gate.status(kpi, AS_OF), gate.series(kpi, AS_OF),
                    [gate.breakdown(kpi, d, before, period, AS_OF) for d in gate.dimensions(kpi, AS_OF)],
                    gate.forecast(kpi, AS_OF), gate.explain(kpi, before, period, AS_OF))

        requests: list[tuple[str, Callable[[], object]]] = [
            ("open + close alone", raw_open),
            ("one-row query", raw_query),
            (f"series of {kpi}", lambda: gate.series(kpi, AS_OF)),
            ("board", lambda: gate.board(AS_OF)),
            (f"breakdown of {kpi} by {dimension}", lambda: gate.breakdown(kpi, dimension, period, period, AS_OF)),
            (f"KPI page's answers for {kpi}", lambda: gate.remember(("bench",), kpi_page)),
        ]
        for _, run in requests[2:]:  # warm up: imports, the OS's file cache, the workspace's checks
            run()
        opened: dict[str, list[float]] = {name: [] for name, _ in requests}
        kept: dict[str, list[float]] = {name: [] for name, _ in requests}
        for _ in range(args.rounds):
            for name, run in requests:
                opened[name] += [_ms(run) for _ in range(args.block)]
            with gate.service() as holder:  # another user holds the warehouse: nobody closes it meanwhile
                for name, run in requests:
                    if name == "open + close alone":
                        kept[name] += [0.0] * args.block
                    elif name == "one-row query":
                        kept[name] += [_ms(lambda: raw_query(holder.con)) for _ in range(args.block)]
                    else:
                        kept[name] += [_ms(run) for _ in range(args.block)]
        gate.close()

    n = args.rounds * args.block
    print(f"kpilot {args.workspace.name}, as of {AS_OF}, {n} requests of each kind and set-up, answer cache off; "
          f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print("median (and fastest) milliseconds per request; ratio and cost: opened per request against kept open")
    print(f"{'request':<46} {'kept open':>17} {'opened per request':>19} {'ratio':>12} {'cost ms':>14}")
    for name, _ in requests:
        k, o = statistics.median(kept[name]), statistics.median(opened[name])
        kf, of = min(kept[name]), min(opened[name])
        ratio = f"{o / k:.2f} ({of / kf:.2f})" if kf else "—"
        print(f"{name:<46} {k:>8.1f} ({kf:>6.1f}) {o:>10.1f} ({of:>6.1f}) {ratio:>12} {o - k:>6.1f} ({of - kf:>5.1f})")


if __name__ == "__main__":
    main()
