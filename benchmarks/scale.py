"""Benchmark at scale: kpilot's full compute of 30 metrics from Parquet files vs expert DuckDB SQL.

    python benchmarks/scale.py [--rows 10000000] [--repeat 3] [--format text|json]

Generates N event rows (customers N/100, subscriptions N/20) as Parquet files in a temporary folder,
writes a workspace with a `parquet` source and 30 metrics of every type (simple sums, counts, count
distinct, avg, max, count_if, ratios, derived formulas, snapshots, cumulative with a window and to date),
loads it with `kpilot load`'s code path (product defaults), then runs, each in its own process so that
its peak memory (max RSS) is its own:
  - kpilot: a cold full compute (`WorkspaceService.compute()`), materialized into the warehouse;
  - sql: the fastest hand-written DuckDB SQL for the same numbers on the same warehouse tables: one
    query per model and grain (every aggregate of a grain in one scan with FILTER clauses, windows for
    running totals, snapshots as running sums of start/end changes), as an expert would write them;
  - incremental: one day of event rows appended (recorded as the file loader records an appended CSV:
    a Parquet file itself is reloaded whole), the as-of date moved by one day, then a compute refresh.
Each timed step runs --repeat times, each in a fresh process from the same warehouse state (restored from a
copy), and the fastest run is reported (other work on a shared machine only adds time), with every run. Events are written in time order, as event
logs are.
Values of kpilot (full and incremental) are checked against the SQL before any time is printed; the
exact-vs-approximate distinct count comparison is printed apart (a variant, not the headline).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

AS_OF = date(2025, 12, 30)  # the generated history ends on this day
APPENDED = AS_OF + timedelta(days=1)  # the day of rows the incremental refresh sees
DAYS = (AS_OF - date(2023, 1, 1)).days + 1
KINDS = ("CASE WHEN r < 0.50 THEN 'visit' WHEN r < 0.75 THEN 'lead' WHEN r < 0.85 THEN 'demo' WHEN r < 0.93 "
         "THEN 'deal' WHEN r < 0.97 THEN 'won' ELSE 'lost' END")

E = "events"
# (key, grain, yaml fields): 30 metrics of every type.
METRICS: list[tuple[str, str, dict[str, object]]] = [
    ("visits_w", "week", {"model": E, "measure": "count(*)", "filter": "kind = 'visit'"}),
    ("leads_w", "week", {"model": E, "measure": "count(*)", "filter": "kind = 'lead'"}),
    ("demos_w", "week", {"model": E, "measure": "count(*)", "filter": "kind = 'demo'"}),
    ("deals_w", "week", {"model": E, "measure": "count(*)", "filter": "kind = 'deal'"}),
    ("pipeline_w", "week", {"model": E, "measure": "sum(amount)", "filter": "kind = 'deal'"}),
    ("won_rev_w", "week", {"model": E, "measure": "sum(amount)", "filter": "kind = 'won'"}),
    ("qualified_leads_w", "week", {"model": E, "measure": "count(*)", "filter": "kind = 'lead' and is_qualified"}),
    ("ads_leads_w", "week", {"model": E, "measure": "count(*)",
                             "filter": "kind = 'lead' and channel in ('google', 'linkedin')"}),
    ("max_won_w", "week", {"model": E, "measure": "max(amount)", "filter": "kind = 'won'"}),
    ("qual_rate_w", "week", {"type": "ratio",
                             "numerator": {"model": E, "measure": "count(*)", "filter": "kind = 'lead' and is_qualified"},
                             "denominator": {"model": E, "measure": "count(*)", "filter": "kind = 'lead'"}}),
    ("demo_rate_w", "week", {"type": "ratio", "numerator": {"model": E, "measure": "count(*)", "filter": "kind = 'demo'"},
                             "denominator": {"model": E, "measure": "count(*)", "filter": "kind = 'lead'"}}),
    ("pipeline_per_demo_w", "week", {"type": "derived", "formula": "pipeline_w / demos_w"}),
    ("leads_4w", "week", {"type": "cumulative", "model": E, "measure": "count(*)", "filter": "kind = 'lead'",
                          "window": 4}),
    ("won_rev_m", "month", {"model": E, "measure": "sum(amount)", "filter": "kind = 'won'"}),
    ("leads_m", "month", {"model": E, "measure": "count(*)", "filter": "kind = 'lead'"}),
    ("pme_pipeline_m", "month", {"model": E, "measure": "sum(amount)", "filter": "kind = 'deal' and segment = 'PME'"}),
    ("avg_deal_m", "month", {"model": E, "measure": "avg(amount)", "filter": "kind = 'deal'"}),
    ("big_deals_m", "month", {"model": E, "measure": "count_if(amount > 10000)", "filter": "kind = 'deal'"}),
    ("active_customers_m", "month", {"model": E, "measure": "count(distinct customer_id)"}),
    ("win_rate_m", "month", {"type": "ratio", "numerator": {"model": E, "measure": "count(*)", "filter": "kind = 'won'"},
                             "denominator": {"model": E, "measure": "count(*)", "filter": "kind in ('won', 'lost')"}}),
    ("revenue_per_visit_m", "month", {"type": "ratio",
                                      "numerator": {"model": E, "measure": "sum(amount)", "filter": "kind = 'won'"},
                                      "denominator": {"model": E, "measure": "count(*)", "filter": "kind = 'visit'"}}),
    ("won_ytd_m", "month", {"type": "cumulative", "model": E, "measure": "sum(amount)", "filter": "kind = 'won'",
                            "to_date": "year"}),
    ("eu_won_m", "month", {"model": E, "measure": "sum(amount)", "filter": "kind = 'won' and customers.region = 'EU'"}),
    ("eu_share_m", "month", {"type": "ratio",
                             "numerator": {"model": E, "measure": "sum(amount)",
                                           "filter": "kind = 'won' and customers.region = 'EU'"},
                             "denominator": {"model": E, "measure": "sum(amount)", "filter": "kind = 'won'"}}),
    ("demos_d", "day", {"model": E, "measure": "count(*)", "filter": "kind = 'demo'"}),
    ("mrr_m", "month", {"type": "snapshot", "model": "subs", "measure": "sum(mrr)"}),
    ("active_subs_m", "month", {"type": "snapshot", "model": "subs", "measure": "count(*)"}),
    ("pme_mrr_m", "month", {"type": "snapshot", "model": "subs", "measure": "sum(mrr)", "filter": "segment = 'PME'"}),
    ("net_new_mrr_m", "month", {"type": "derived", "formula": "mrr_m - offset(mrr_m, -1)"}),
    ("mrr_w", "week", {"type": "snapshot", "model": "subs", "measure": "sum(mrr)"}),
]

# Where no row means 0 (a count or sum over no event), not "unknown": an absent SQL row equals kpilot's 0.
ZERO_WHEN_ABSENT = {k for k, _, f in METRICS if f.get("type") is None and "count(distinct" not in str(f["measure"])
                    and str(f["measure"]).split("(")[0] in ("count", "sum", "count_if")}


def generate(folder: Path, rows: int) -> None:
    """Parquet files events, customers, subs (deterministic for a given N)."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    customers = max(rows // 100, 100)
    con.execute(f"""COPY (SELECT i AS customer_id, CASE WHEN random() < 0.6 THEN 'EU' ELSE 'NA' END AS region
        FROM range({customers}) t(i)) TO '{folder / "customers.parquet"}' (FORMAT parquet)""")
    con.execute(f"COPY ({events_select(rows, date(2023, 1, 1), DAYS, customers)} ORDER BY ts) "
                f"TO '{folder / 'events.parquet'}' (FORMAT parquet)")
    con.execute(f"""COPY (SELECT * FROM (SELECT i AS sub_id,
        DATE '2023-01-01' + (random() * 1000)::INT AS start_date,
        CASE WHEN random() < 0.4 THEN DATE '2023-01-01' + (random() * 1095)::INT END AS end_date,
        round(100 + random() * 3000, 2) AS mrr,
        ['PME', 'ETI', 'GE'][1 + (random() * 2.999)::INT] AS segment
        FROM range({max(rows // 20, 100)}) t(i)) WHERE end_date IS NULL OR end_date > start_date)
        TO '{folder / "subs.parquet"}' (FORMAT parquet)""")
    con.close()


def events_select(rows: int, first: date, days: int, customers: int) -> str:
    return f"""SELECT
        TIMESTAMP '{first.isoformat()}' + to_seconds(floor(random() * {days} * 86400)::BIGINT) AS ts,
        (random() * {customers - 1})::INT AS customer_id,
        ['google', 'linkedin', 'seo', 'referral', 'outbound', 'events'][1 + (random() * 5.999)::INT] AS channel,
        ['PME', 'ETI', 'GE'][1 + (random() * 2.999)::INT] AS segment,
        {KINDS} AS kind,
        round(random() * 20000, 2) AS amount,
        random() < 0.4 AS is_qualified
        FROM (SELECT random() AS r FROM range({rows}))"""


def workspace_yaml() -> str:
    import yaml

    doc = {
        "workspace": "scale", "timezone": "UTC", "week_start": "monday",
        "sources": [{"key": "files", "type": "parquet", "path": "data/"}],
        "models": [
            {"key": "events", "table": "events", "time": "ts", "joins": [{"model": "customers", "on": "customer_id"}]},
            {"key": "customers", "table": "customers"},
            {"key": "subs", "table": "subs", "validity": {"from": "start_date", "to": "end_date"}},
        ],
        "metrics": [{"key": k, "grain": g, **fields} for k, g, fields in METRICS],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries a parent's peak over fork and
    exec into the child's ru_maxrss, so a worker would report the driver's memory (data generation) as its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _service(ws: Path, today: date) -> Any:
    from kpilot.service import WorkspaceService

    svc = WorkspaceService(ws, state_dir=ws / "state")
    svc.today = lambda: today  # type: ignore[method-assign]
    return svc


def _series_values(mc: Any) -> dict[str, dict[str, float | None]]:
    out = {}
    for key, _, _ in METRICS:
        s = mc.series(key)
        out[key] = {p.isoformat(): (None if math.isnan(v) else float(v)) for p, v in zip(s.periods, s.values, strict=True)}
    return out


def run_load(ws: Path, _: date) -> dict[str, object]:
    svc = _service(ws, AS_OF)
    t0 = time.perf_counter()
    svc.load()
    seconds = time.perf_counter() - t0
    svc.close()
    return {"seconds": seconds, "peak_mb": peak_mb()}


def run_kpilot(ws: Path, as_of: date) -> dict[str, object]:
    svc = _service(ws, as_of)
    t0 = time.perf_counter()
    mc = svc.computer()
    report = mc.materialize()
    seconds = time.perf_counter() - t0
    values = _series_values(mc)
    svc.close()
    return {"seconds": seconds, "values": values, "queries": report.queries, "peak_mb": peak_mb(),
            "recomputed": report.aggregates_recomputed, "incremental": report.aggregates_incremental}


def append_day(ws: Path, rows: int) -> int:
    """Append one day of event rows to the warehouse's events table and record it as the loader records an
    appended file (version + 1, change 'append', the appended rows' first time), as a CSV append would."""
    import duckdb

    con = duckdb.connect(str(ws / "state" / "warehouse.duckdb"))
    con.execute("SELECT setseed(0.24)")
    customers = max(rows // 100, 100)
    n = max(rows // DAYS, 1)
    con.execute(f"INSERT INTO events BY NAME {events_select(n, APPENDED, 1, customers)} ORDER BY ts")
    first = con.execute("SELECT min(ts) FROM events WHERE ts >= ?", [APPENDED]).fetchall()[0][0]
    con.execute("UPDATE kpilot.loads SET version = version + 1, change = 'append', append_min = ?, rows = rows + ? "
                "WHERE table_name = 'events'", [json.dumps({"ts": str(first)}), n])
    con.close()
    return n


# --- the expert's SQL ------------------------------------------------------------------------------

W = "date_trunc('week', ts)::DATE"
M = "date_trunc('month', ts)::DATE"


def expert_queries(as_of: date) -> list[tuple[str, list[str]]]:
    """(query, metric keys of its columns after the period): one query per model and grain."""
    end = (as_of + timedelta(days=1)).isoformat()
    weekly = f"""WITH s AS (SELECT {W} AS p,
          count(*) FILTER (kind = 'visit') AS visits, count(*) FILTER (kind = 'lead') AS leads,
          count(*) FILTER (kind = 'demo') AS demos, count(*) FILTER (kind = 'deal') AS deals,
          sum(amount) FILTER (kind = 'deal') AS pipeline, sum(amount) FILTER (kind = 'won') AS won,
          count(*) FILTER (kind = 'lead' AND is_qualified) AS qleads,
          count(*) FILTER (kind = 'lead' AND channel IN ('google', 'linkedin')) AS ads,
          max(amount) FILTER (kind = 'won') AS max_won
        FROM events GROUP BY 1)
        SELECT p, visits, leads, demos, deals, pipeline, won, qleads, ads, max_won, qleads / leads, demos / leads,
          coalesce(pipeline, 0) / demos,
          CASE WHEN row_number() OVER w >= 4 THEN sum(leads) OVER (w ROWS 3 PRECEDING) END
        FROM s WINDOW w AS (ORDER BY p)"""
    monthly = f"""WITH s AS (SELECT {M} AS p,
          sum(amount) FILTER (kind = 'won') AS won, count(*) FILTER (kind = 'lead') AS leads,
          sum(amount) FILTER (kind = 'deal' AND segment = 'PME') AS pme,
          avg(amount) FILTER (kind = 'deal') AS avg_deal, count(*) FILTER (kind = 'deal' AND amount > 10000) AS big,
          count(DISTINCT customer_id) AS active,
          count(*) FILTER (kind = 'won') AS n_won, count(*) FILTER (kind IN ('won', 'lost')) AS n_closed,
          count(*) FILTER (kind = 'visit') AS visits
        FROM events GROUP BY 1)
        SELECT p, won, leads, pme, avg_deal, big, active, n_won / n_closed, won / visits,
          sum(won) OVER (PARTITION BY year(p) ORDER BY p)
        FROM s"""
    joined = f"""SELECT {M} AS p, sum(amount) FILTER (c.region = 'EU'), sum(amount) FILTER (c.region = 'EU') / sum(amount)
        FROM events e LEFT JOIN customers c USING (customer_id) WHERE e.kind = 'won' GROUP BY 1"""
    daily = "SELECT ts::DATE, count(*) FROM events WHERE kind = 'demo' GROUP BY 1"

    def snapshot(unit: str, step: str, values: str, keys: list[str]) -> tuple[str, list[str]]:
        # The value at a period's end (or the day after the as-of date) is the running sum of what started
        # minus what ended before it.
        return (f"""WITH c AS (
              SELECT start_date AS d, mrr, 1 AS n, segment FROM subs
              UNION ALL SELECT end_date, -mrr, -1, segment FROM subs WHERE end_date IS NOT NULL),
            ch AS (SELECT date_trunc('{unit}', d)::DATE AS p, sum(mrr) AS mrr, sum(n) AS n,
                     sum(mrr) FILTER (segment = 'PME') AS pme FROM c WHERE d < DATE '{end}' GROUP BY 1),
            spine AS (SELECT unnest(generate_series((SELECT date_trunc('{unit}', min(start_date)) FROM subs),
                                                    DATE '{as_of.isoformat()}', INTERVAL {step}))::DATE AS p),
            run AS (SELECT spine.p, sum(coalesce(mrr, 0)) OVER w AS mrr, sum(coalesce(n, 0)) OVER w AS n,
                      sum(coalesce(pme, 0)) OVER w AS pme
                    FROM spine LEFT JOIN ch USING (p) WINDOW w AS (ORDER BY spine.p))
            SELECT {values} FROM run""", keys)

    return [
        (weekly, ["visits_w", "leads_w", "demos_w", "deals_w", "pipeline_w", "won_rev_w", "qualified_leads_w",
                  "ads_leads_w", "max_won_w", "qual_rate_w", "demo_rate_w", "pipeline_per_demo_w", "leads_4w"]),
        (monthly, ["won_rev_m", "leads_m", "pme_pipeline_m", "avg_deal_m", "big_deals_m", "active_customers_m",
                   "win_rate_m", "revenue_per_visit_m", "won_ytd_m"]),
        (joined, ["eu_won_m", "eu_share_m"]),
        (daily, ["demos_d"]),
        snapshot("month", "1 MONTH", "p, mrr, n, pme, mrr - lag(mrr) OVER (ORDER BY p)",
                 ["mrr_m", "active_subs_m", "pme_mrr_m", "net_new_mrr_m"]),
        snapshot("week", "7 DAY", "p, mrr", ["mrr_w"]),
    ]


def run_sql(ws: Path, as_of: date) -> dict[str, object]:
    import duckdb

    con = duckdb.connect(str(ws / "state" / "warehouse.duckdb"), read_only=True)
    t0 = time.perf_counter()
    values: dict[str, dict[str, float | None]] = {}
    queries = expert_queries(as_of)
    for sql, keys in queries:
        for row in con.execute(sql).fetchall():
            period = row[0].isoformat()
            for key, v in zip(keys, row[1:], strict=True):
                values.setdefault(key, {})[period] = None if v is None or (isinstance(v, float) and math.isnan(v)) \
                    else float(v)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "values": values, "queries": len(queries), "peak_mb": peak_mb()}


def run_distinct(ws: Path, _: date) -> dict[str, object]:
    """The monthly distinct count alone: exact count(DISTINCT) vs approx_count_distinct (HyperLogLog)."""
    import duckdb

    con = duckdb.connect(str(ws / "state" / "warehouse.duckdb"), read_only=True)
    out: dict[str, object] = {}
    results = {}
    for name, agg in (("exact", "count(DISTINCT customer_id)"), ("approx", "approx_count_distinct(customer_id)")):
        t0 = time.perf_counter()
        results[name] = dict(con.execute(f"SELECT {M}, {agg} FROM events GROUP BY 1").fetchall())
        out[f"{name}_s"] = time.perf_counter() - t0
    errors = [abs(results["approx"][p] - v) / v for p, v in results["exact"].items() if v]
    out["approx_max_rel_error"] = max(errors) if errors else 0.0
    return out


def compare(reference: dict[str, dict[str, float | None]], other: dict[str, dict[str, float | None]]) -> tuple[int, float]:
    """(mismatching values, max relative difference) over the periods of either side."""
    bad, worst = 0, 0.0
    for key, _, _ in METRICS:
        ref, got = reference.get(key, {}), other.get(key, {})
        for p in set(ref) | set(got):
            v, g = ref.get(p), got.get(p)
            if key in ZERO_WHEN_ABSENT and v is None:  # a sum or count over no row is 0
                v = 0.0
            if v is None or g is None:
                bad += (v is None) != (g is None)
                continue
            rel = abs(g - v) / max(abs(v), 1e-9)
            worst = max(worst, rel)
            bad += rel > 1e-9
    return bad, worst


WORKERS = {"load": run_load, "kpilot": run_kpilot, "sql": run_sql, "distinct": run_distinct}


def _worker(who: str, ws: Path, as_of: date, tmp: Path) -> dict[str, Any]:
    out = tmp / f"{who}.pickle"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    subprocess.run([sys.executable, __file__, "--worker", who, "--ws", str(ws), "--as-of", as_of.isoformat(),
                    "--out", str(out)], check=True, env=env)
    result: dict[str, Any] = pickle.loads(out.read_bytes())
    return result


def _restore(state: Path, saved: Path) -> None:
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(saved, state)


def _timed(who: str, ws: Path, as_of: date, tmp: Path, repeat: int, saved: Path | None = None
           ) -> tuple[dict[str, Any], list[float]]:
    """The step run `repeat` times, each in a fresh process (from the saved warehouse state): the last result,
    and every run's seconds."""
    seconds, result = [], {}
    for _ in range(repeat):
        if saved is not None:
            _restore(ws / "state", saved)
        result = _worker(who, ws, as_of, tmp)
        seconds.append(result["seconds"])
    return result, seconds


def run(rows: int, *, repeat: int = 3, distinct: bool = True) -> dict[str, Any]:
    """Every step at N rows; the figures (fastest of `repeat` runs), the values compared, the machine's load."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ws = tmp / "ws"
        t0 = time.perf_counter()
        generate(ws / "data", rows)
        (ws / "kpilot.yaml").write_text(workspace_yaml(), encoding="utf-8")
        gen = time.perf_counter() - t0
        load = _worker("load", ws, AS_OF, tmp)
        loaded = tmp / "state.loaded"
        shutil.copytree(ws / "state", loaded)
        sql, sql_runs = _timed("sql", ws, AS_OF, tmp, repeat)
        kp, kp_runs = _timed("kpilot", ws, AS_OF, tmp, repeat, loaded)
        appended = append_day(ws, rows)
        computed = tmp / "state.appended"
        shutil.copytree(ws / "state", computed)
        inc, inc_runs = _timed("kpilot", ws, APPENDED, tmp, repeat, computed)
        sql_after = _worker("sql", ws, APPENDED, tmp)
        dist = _worker("distinct", ws, APPENDED, tmp) if distinct else {}
    bad_full, worst_full = compare(sql["values"], kp["values"])
    bad_inc, worst_inc = compare(sql_after["values"], inc["values"])
    kpilot_s, sql_s = min(kp_runs), min(sql_runs)
    return {
        "rows": rows, "kpilot_s": round(kpilot_s, 3), "sql_s": round(sql_s, 3),
        "ratio": round(kpilot_s / sql_s, 3), "peak_mb": round(kp["peak_mb"]),
        "incremental_s": round(min(inc_runs), 3), "mismatches": bad_full + bad_inc,
        "max_rel_diff": max(worst_full, worst_inc), "metrics": len(METRICS), "repeat": repeat,
        "kpilot_runs_s": [round(x, 3) for x in kp_runs], "sql_runs_s": [round(x, 3) for x in sql_runs],
        "incremental_runs_s": [round(x, 3) for x in inc_runs], "kpilot_queries": kp["queries"],
        "sql_queries": sql["queries"], "sql_peak_mb": round(sql["peak_mb"]), "incremental_peak_mb": round(inc["peak_mb"]),
        "load_s": round(load["seconds"], 3), "load_peak_mb": round(load["peak_mb"]), "generate_s": round(gen, 2),
        "appended_rows": appended, "incremental_aggregates": inc["incremental"],
        "incremental_recomputed": inc["recomputed"],
        "distinct": {k: round(v, 4) for k, v in dist.items()}, "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each step; the fastest is reported")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--ws", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.out.write_bytes(pickle.dumps(WORKERS[args.worker](args.ws, args.as_of)))
        return
    s = run(args.rows, repeat=max(args.repeat, 1))
    if args.format == "json":
        print(json.dumps(s, indent=2))
        return
    if s["mismatches"]:
        print(f"{s['mismatches']} values differ from the hand-written SQL (max rel diff {s['max_rel_diff']:.1e}): "
              "no time is reported.")
        sys.exit(1)
    print(f"{s['rows']:,} event rows, {s['metrics']} metrics, {s['cores']} cores, fastest of {s['repeat']} runs, load average "
          f"{s['load_average_before'][0]:.2f} before / {s['load_average_after'][0]:.2f} after")
    print(f"values: kpilot (full and incremental) equal the hand-written SQL (max rel diff {s['max_rel_diff']:.1e})")
    print(f"kpilot load (Parquet -> warehouse) {s['load_s']:>8.2f} s   peak {s['load_peak_mb']} MB")
    print(f"kpilot full compute                {s['kpilot_s']:>8.2f} s   peak {s['peak_mb']} MB, "
          f"{s['kpilot_queries']} queries")
    print(f"expert DuckDB SQL                  {s['sql_s']:>8.2f} s   peak {s['sql_peak_mb']} MB, "
          f"{s['sql_queries']} queries")
    print(f"kpilot / expert SQL                {s['ratio']:>8.2f}x  (goal <= 1.2x at 100M rows)")
    print(f"incremental refresh (+{s['appended_rows']:,} rows, 1 day) {s['incremental_s']:.2f} s  (goal < 1 s)")
    print(f"every run (s): kpilot {s['kpilot_runs_s']}, SQL {s['sql_runs_s']}, incremental {s['incremental_runs_s']}")
    d = s["distinct"]
    if d:
        print(f"variant, monthly distinct customers alone: exact {d['exact_s']:.2f} s, approx_count_distinct "
              f"{d['approx_s']:.2f} s, max rel error {d['approx_max_rel_error']:.2%}")


if __name__ == "__main__":
    main()
