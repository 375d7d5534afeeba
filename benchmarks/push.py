"""Benchmark: a small push to a large pushed table, appended (kpilot's default) versus the table rebuilt.

    python benchmarks/push.py [--rows 200000] [--push 1] [--repeat 5] [--format text|json]

A workspace with a push source; N rows are pushed through the application database and materialized once.
Then each round pushes `--push` more rows and times bringing the warehouse table up to date:
  - append: `WorkspaceService.load_pushed()`, what `POST /api/v1/push` runs (only the new rows are inserted);
  - rebuild: the table dropped first, so the same call rebuilds it from every pushed row (the former behaviour).
Both end with the same rows (count and sum checked) before any time is printed. Median of the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

YAML = """workspace: pushbench
sources: [{key: crm, type: push, tables: [calls]}]
models: [{key: calls, table: calls, time: at}]
metrics: [{key: minutes, model: calls, measure: sum(minutes), grain: month}]
"""


def _rows(start: int, n: int) -> list[tuple[str, dict[str, object]]]:
    return [("calls", {"at": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00", "minutes": i % 60, "rep": f"r{i % 9}"})
            for i in range(start, start + n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--push", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args()

    from kpilot.service import WorkspaceService

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        (ws / "kpilot.yaml").write_text(YAML, encoding="utf-8")
        with WorkspaceService(ws, state_dir=Path(tmp) / "state") as svc:
            store = svc.app_store()
            store.record_push("pushbench", key=None, fingerprint="seed", response={}, rows=_rows(0, args.rows))
            svc.load_pushed()
            total = args.rows
            timings: dict[str, list[float]] = {"append": [], "rebuild": []}
            for _ in range(args.repeat):
                for mode in ("append", "rebuild"):
                    store.record_push("pushbench", key=None, fingerprint="x", response={},
                                      rows=_rows(total, args.push))
                    total += args.push
                    if mode == "rebuild":
                        svc.con.execute("DROP TABLE calls")
                    started = time.perf_counter()
                    svc.load_pushed()
                    timings[mode].append(time.perf_counter() - started)
                    count, minutes = svc.con.execute("SELECT count(*), sum(minutes) FROM calls").fetchall()[0]
                    expected = sum(i % 60 for i in range(total))
                    if count != total or minutes != expected:
                        sys.exit(f"{mode}: {count} rows, {minutes} minutes; expected {total}, {expected}")
    append, rebuild = (statistics.median(timings[m]) for m in ("append", "rebuild"))
    result = {"rows": args.rows, "push": args.push, "append_s": round(append, 4), "rebuild_s": round(rebuild, 4),
              "speedup": round(rebuild / append, 1)}
    if args.format == "json":
        print(json.dumps(result))
    else:
        print(f"{args.push} row(s) pushed onto {args.rows:,} rows, median of {args.repeat} rounds (values checked):")
        print(f"  append (default)  {append * 1000:9.1f} ms")
        print(f"  rebuild           {rebuild * 1000:9.1f} ms")
        print(f"  speed-up          {rebuild / append:9.1f}x")


if __name__ == "__main__":
    main()
