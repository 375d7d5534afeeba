"""Benchmark: kpilot's full compute of 30 metrics vs hand-written DuckDB SQL vs pandas.

    python benchmarks/compute.py [--rows 10000000] [--format text|json]

Generates N event rows (plus subscriptions and customers) into a DuckDB file, then runs three
contenders, each in its own process so that its peak memory (max RSS) is its own:
  - kpilot: a cold `MetricComputer.materialize()` of 30 metrics of mixed types (simple, ratio,
    snapshot, derived, cumulative), materialized into the warehouse;
  - sql: one hand-written DuckDB query per metric, as an analyst would write them, results fetched;
  - pandas: the same metrics with pandas group-bys over DataFrames already in memory (reading the
    data into pandas is not timed, its memory is counted).
Every contender's values are checked against the hand-written SQL before times are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

AS_OF = date(2025, 12, 31)
KINDS = "CASE WHEN r < 0.50 THEN 'visit' WHEN r < 0.75 THEN 'lead' WHEN r < 0.85 THEN 'demo' WHEN r < 0.93 THEN 'deal' WHEN r < 0.97 THEN 'won' ELSE 'lost' END"

# (key, type, grain, yaml fields, hand-written SQL returning (period, value))
W = "date_trunc('week', ts)::DATE"
M = "date_trunc('month', ts)::DATE"
METRICS: list[tuple[str, str, dict[str, object], str]] = [
    ("visits_w", "week", {"model": "events", "measure": "count(*)", "filter": "kind = 'visit'"},
     f"SELECT {W}, count(*) FROM events WHERE kind = 'visit' GROUP BY 1"),
    ("leads_w", "week", {"model": "events", "measure": "count(*)", "filter": "kind = 'lead'"},
     f"SELECT {W}, count(*) FROM events WHERE kind = 'lead' GROUP BY 1"),
    ("demos_w", "week", {"model": "events", "measure": "count(*)", "filter": "kind = 'demo'"},
     f"SELECT {W}, count(*) FROM events WHERE kind = 'demo' GROUP BY 1"),
    ("deals_w", "week", {"model": "events", "measure": "count(*)", "filter": "kind = 'deal'"},
     f"SELECT {W}, count(*) FROM events WHERE kind = 'deal' GROUP BY 1"),
    ("pipeline_w", "week", {"model": "events", "measure": "sum(amount)", "filter": "kind = 'deal'"},
     f"SELECT {W}, sum(amount) FROM events WHERE kind = 'deal' GROUP BY 1"),
    ("won_rev_w", "week", {"model": "events", "measure": "sum(amount)", "filter": "kind = 'won'"},
     f"SELECT {W}, sum(amount) FROM events WHERE kind = 'won' GROUP BY 1"),
    ("won_rev_m", "month", {"model": "events", "measure": "sum(amount)", "filter": "kind = 'won'"},
     f"SELECT {M}, sum(amount) FROM events WHERE kind = 'won' GROUP BY 1"),
    ("leads_m", "month", {"model": "events", "measure": "count(*)", "filter": "kind = 'lead'"},
     f"SELECT {M}, count(*) FROM events WHERE kind = 'lead' GROUP BY 1"),
    ("qualified_leads_w", "week", {"model": "events", "measure": "count(*)", "filter": "kind = 'lead' and is_qualified"},
     f"SELECT {W}, count(*) FROM events WHERE kind = 'lead' AND is_qualified GROUP BY 1"),
    ("ads_leads_w", "week", {"model": "events", "measure": "count(*)",
                             "filter": "kind = 'lead' and channel in ('google', 'linkedin')"},
     f"SELECT {W}, count(*) FROM events WHERE kind = 'lead' AND channel IN ('google', 'linkedin') GROUP BY 1"),
    ("pme_pipeline_m", "month", {"model": "events", "measure": "sum(amount)", "filter": "kind = 'deal' and segment = 'PME'"},
     f"SELECT {M}, sum(amount) FROM events WHERE kind = 'deal' AND segment = 'PME' GROUP BY 1"),
    ("eu_won_m", "month", {"model": "events", "measure": "sum(amount)", "filter": "kind = 'won' and customers.region = 'EU'"},
     f"SELECT {M}, sum(e.amount) FROM events e JOIN customers c USING (customer_id) WHERE e.kind = 'won' AND c.region = 'EU' GROUP BY 1"),
    ("avg_deal_m", "month", {"model": "events", "measure": "avg(amount)", "filter": "kind = 'deal'"},
     f"SELECT {M}, avg(amount) FROM events WHERE kind = 'deal' GROUP BY 1"),
    ("active_customers_m", "month", {"model": "events", "measure": "count(distinct customer_id)"},
     f"SELECT {M}, count(DISTINCT customer_id) FROM events GROUP BY 1"),
    ("max_won_w", "week", {"model": "events", "measure": "max(amount)", "filter": "kind = 'won'"},
     f"SELECT {W}, max(amount) FROM events WHERE kind = 'won' GROUP BY 1"),
    ("demos_d", "day", {"model": "events", "measure": "count(*)", "filter": "kind = 'demo'"},
     "SELECT ts::DATE, count(*) FROM events WHERE kind = 'demo' GROUP BY 1"),
    ("win_rate_m", "month", {"type": "ratio", "numerator": {"model": "events", "measure": "count(*)", "filter": "kind = 'won'"},
                             "denominator": {"model": "events", "measure": "count(*)", "filter": "kind in ('won', 'lost')"}},
     f"SELECT {M}, count(*) FILTER (WHERE kind = 'won') / count(*) FILTER (WHERE kind IN ('won', 'lost')) FROM events GROUP BY 1"),
    ("qual_rate_w", "week", {"type": "ratio", "numerator": {"model": "events", "measure": "count(*)", "filter": "kind = 'lead' and is_qualified"},
                             "denominator": {"model": "events", "measure": "count(*)", "filter": "kind = 'lead'"}},
     f"SELECT {W}, count(*) FILTER (WHERE is_qualified) / count(*) FROM events WHERE kind = 'lead' GROUP BY 1"),
    ("demo_rate_w", "week", {"type": "ratio", "numerator": {"model": "events", "measure": "count(*)", "filter": "kind = 'demo'"},
                             "denominator": {"model": "events", "measure": "count(*)", "filter": "kind = 'lead'"}},
     f"SELECT {W}, count(*) FILTER (WHERE kind = 'demo') / count(*) FILTER (WHERE kind = 'lead') FROM events GROUP BY 1"),
    ("conversion_m", "month", {"type": "ratio", "numerator": {"model": "events", "measure": "count(*)", "filter": "kind = 'won'"},
                               "denominator": {"model": "events", "measure": "count(*)", "filter": "kind = 'deal'"}},
     f"SELECT {M}, count(*) FILTER (WHERE kind = 'won') / count(*) FILTER (WHERE kind = 'deal') FROM events GROUP BY 1"),
    ("revenue_per_visit_m", "month", {"type": "ratio", "numerator": {"model": "events", "measure": "sum(amount)", "filter": "kind = 'won'"},
                                      "denominator": {"model": "events", "measure": "count(*)", "filter": "kind = 'visit'"}},
     f"SELECT {M}, sum(amount) FILTER (WHERE kind = 'won') / count(*) FILTER (WHERE kind = 'visit') FROM events GROUP BY 1"),
    ("eu_share_m", "month", {"type": "ratio",
                             "numerator": {"model": "events", "measure": "sum(amount)", "filter": "kind = 'won' and customers.region = 'EU'"},
                             "denominator": {"model": "events", "measure": "sum(amount)", "filter": "kind = 'won'"}},
     f"SELECT {M}, sum(e.amount) FILTER (WHERE c.region = 'EU') / sum(e.amount) FROM events e JOIN customers c USING (customer_id) WHERE e.kind = 'won' GROUP BY 1"),
    ("mrr_m", "month", {"type": "snapshot", "model": "subs", "measure": "sum(mrr)"},
     """WITH p AS (SELECT unnest(generate_series(DATE '2023-01-01', DATE '2025-12-01', INTERVAL 1 MONTH))::DATE AS m)
        SELECT m, sum(mrr) FROM p JOIN subs ON start_date <= last_day(m) AND (end_date IS NULL OR end_date > last_day(m)) GROUP BY 1"""),
    ("active_subs_m", "month", {"type": "snapshot", "model": "subs", "measure": "count(*)"},
     """WITH p AS (SELECT unnest(generate_series(DATE '2023-01-01', DATE '2025-12-01', INTERVAL 1 MONTH))::DATE AS m)
        SELECT m, count(*) FROM p JOIN subs ON start_date <= last_day(m) AND (end_date IS NULL OR end_date > last_day(m)) GROUP BY 1"""),
    ("pme_mrr_m", "month", {"type": "snapshot", "model": "subs", "measure": "sum(mrr)", "filter": "segment = 'PME'"},
     """WITH p AS (SELECT unnest(generate_series(DATE '2023-01-01', DATE '2025-12-01', INTERVAL 1 MONTH))::DATE AS m)
        SELECT m, sum(mrr) FROM p JOIN subs ON start_date <= last_day(m) AND (end_date IS NULL OR end_date > last_day(m))
        WHERE segment = 'PME' GROUP BY 1"""),
    ("mrr_w", "week", {"type": "snapshot", "model": "subs", "measure": "sum(mrr)"},
     """WITH p AS (SELECT unnest(generate_series(DATE '2022-12-26', DATE '2025-12-29', INTERVAL 7 DAY))::DATE AS w)
        SELECT w, sum(mrr) FROM p JOIN subs ON start_date <= w + 6 AND (end_date IS NULL OR end_date > w + 6) GROUP BY 1"""),
    ("pipeline_per_demo_w", "week", {"type": "derived", "formula": "pipeline_w / demos_w"},
     f"""SELECT {W}, sum(amount) FILTER (WHERE kind = 'deal') / count(*) FILTER (WHERE kind = 'demo') FROM events GROUP BY 1"""),
    ("net_new_mrr_m", "month", {"type": "derived", "formula": "mrr_m - offset(mrr_m, -1)"},
     """WITH p AS (SELECT unnest(generate_series(DATE '2023-01-01', DATE '2025-12-01', INTERVAL 1 MONTH))::DATE AS m),
        s AS (SELECT m, sum(mrr) v FROM p JOIN subs ON start_date <= last_day(m) AND (end_date IS NULL OR end_date > last_day(m)) GROUP BY 1)
        SELECT m, v - lag(v) OVER (ORDER BY m) FROM s"""),
    ("won_ytd_m", "month", {"type": "cumulative", "model": "events", "measure": "sum(amount)", "filter": "kind = 'won'", "to_date": "year"},
     f"""WITH s AS (SELECT {M} m, sum(amount) v FROM events WHERE kind = 'won' GROUP BY 1)
        SELECT m, sum(v) OVER (PARTITION BY year(m) ORDER BY m) FROM s"""),
    ("leads_4w", "week", {"type": "cumulative", "model": "events", "measure": "count(*)", "filter": "kind = 'lead'", "window": 4},
     f"""WITH s AS (SELECT {W} w, count(*) v FROM events WHERE kind = 'lead' GROUP BY 1)
        SELECT w, CASE WHEN row_number() OVER (ORDER BY w) >= 4 THEN sum(v) OVER (ORDER BY w ROWS 3 PRECEDING) END FROM s"""),
]


def generate(path: Path, rows: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("SELECT setseed(0.42)")
    customers = max(rows // 100, 100)
    con.execute(f"""CREATE TABLE customers AS SELECT i AS customer_id,
        CASE WHEN random() < 0.6 THEN 'EU' ELSE 'NA' END AS region FROM range({customers}) t(i)""")
    con.execute(f"""CREATE TABLE events AS SELECT
        TIMESTAMP '2023-01-01' + to_seconds((random() * 3 * 365 * 86400)::BIGINT) AS ts,
        (random() * {customers - 1})::INT AS customer_id,
        ['google', 'linkedin', 'seo', 'referral', 'outbound', 'events'][1 + (random() * 5.999)::INT] AS channel,
        ['PME', 'ETI', 'GE'][1 + (random() * 2.999)::INT] AS segment,
        {KINDS} AS kind,
        round(random() * 20000, 2) AS amount,
        random() < 0.4 AS is_qualified
        FROM (SELECT random() AS r FROM range({rows}))""")
    con.execute(f"""CREATE TABLE subs AS SELECT i AS sub_id,
        DATE '2023-01-01' + (random() * 1000)::INT AS start_date,
        CASE WHEN random() < 0.4 THEN DATE '2023-01-01' + (random() * 1095)::INT END AS end_date,
        round(100 + random() * 3000, 2) AS mrr,
        ['PME', 'ETI', 'GE'][1 + (random() * 2.999)::INT] AS segment
        FROM range({max(rows // 20, 100)}) t(i)""")
    con.execute("DELETE FROM subs WHERE end_date IS NOT NULL AND end_date <= start_date")
    con.close()


def workspace_yaml() -> str:
    import yaml

    metrics = [{"key": k, "grain": g, **fields} for k, g, fields, _ in METRICS]
    doc = {
        "workspace": "bench", "timezone": "UTC", "week_start": "monday",
        "models": [
            {"key": "events", "table": "events", "time": "ts", "joins": [{"model": "customers", "on": "customer_id"}]},
            {"key": "customers", "table": "customers"},
            {"key": "subs", "table": "subs", "validity": {"from": "start_date", "to": "end_date"}},
        ],
        "metrics": metrics,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_kpilot(db: Path) -> dict[str, object]:
    import duckdb
    import numpy as np

    from kpilot.compute.engine import DuckDBEngine
    from kpilot.compute.metrics import MetricComputer
    from kpilot.model import parse_workspace, validate

    con = duckdb.connect(str(db))
    ws, smap = parse_workspace(workspace_yaml(), "bench.yaml")
    engine = DuckDBEngine(con)
    t0 = time.perf_counter()
    schema = {t: engine.columns(t) for t in engine.tables()}
    errors = [i for i in validate(ws, smap, schema) if i.severity == "error"]
    assert not errors, errors
    mc = MetricComputer(engine, ws, schema, as_of=AS_OF, store=con)
    report = mc.materialize()
    seconds = time.perf_counter() - t0
    values = {}
    for key in ws.metric_keys:
        s = mc.series(key)
        values[key] = {p.isoformat(): (None if np.isnan(v) else float(v)) for p, v in zip(s.periods, s.values, strict=True)}
    return {"seconds": seconds, "values": values, "queries": report.queries, "peak_mb": peak_mb()}


def run_sql(db: Path) -> dict[str, object]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    t0 = time.perf_counter()
    values = {}
    for key, _, _, sql in METRICS:
        values[key] = {p.isoformat(): (None if v is None else float(v)) for p, v in con.execute(sql).fetchall()}
    return {"seconds": time.perf_counter() - t0, "values": values, "queries": len(METRICS), "peak_mb": peak_mb()}


def run_pandas(db: Path) -> dict[str, object]:
    import duckdb
    import numpy as np
    import pandas as pd

    con = duckdb.connect(str(db), read_only=True)
    ev = con.execute("SELECT * FROM events").df()
    cust = con.execute("SELECT * FROM customers").df()
    subs = con.execute("SELECT * FROM subs").df()
    t0 = time.perf_counter()
    ev["week"] = ev["ts"].dt.to_period("W-SUN").dt.start_time
    ev["month"] = ev["ts"].dt.to_period("M").dt.start_time
    ev["day"] = ev["ts"].dt.normalize()
    col = {"week": "week", "month": "month", "day": "day"}

    def flow(mask: pd.Series | None, grain: str, how: str, column: str = "amount", frame: pd.DataFrame = ev) -> pd.Series:
        df = frame if mask is None else frame[mask]
        g = df.groupby(col[grain])
        if how == "count":
            return g.size().astype(float)
        if how == "nunique":
            return g["customer_id"].nunique().astype(float)
        return getattr(g[column], how)()

    def snapshot(grain: str, how: str, mask: pd.Series | None = None) -> pd.Series:
        df = subs if mask is None else subs[mask]
        start = pd.Timestamp("2023-01-01") if grain == "month" else pd.Timestamp("2022-12-26")
        periods = pd.date_range(start, "2025-12-31", freq="MS" if grain == "month" else "W-MON")
        out = {}
        s_start = pd.to_datetime(df["start_date"])
        s_end = pd.to_datetime(df["end_date"])
        for p in periods:
            last = (p + pd.offsets.MonthEnd(0)) if grain == "month" else p + pd.Timedelta(days=6)
            valid = (s_start <= last) & (s_end.isna() | (s_end > last))
            out[p] = float(valid.sum()) if how == "count" else float(df.loc[valid, "mrr"].sum())
        return pd.Series(out)

    kind = ev["kind"]
    merged = ev[kind == "won"].merge(cust, on="customer_id")
    v: dict[str, pd.Series] = {}
    v["visits_w"] = flow(kind == "visit", "week", "count")
    v["leads_w"] = flow(kind == "lead", "week", "count")
    v["demos_w"] = flow(kind == "demo", "week", "count")
    v["deals_w"] = flow(kind == "deal", "week", "count")
    v["pipeline_w"] = flow(kind == "deal", "week", "sum")
    v["won_rev_w"] = flow(kind == "won", "week", "sum")
    v["won_rev_m"] = flow(kind == "won", "month", "sum")
    v["leads_m"] = flow(kind == "lead", "month", "count")
    v["qualified_leads_w"] = flow((kind == "lead") & ev["is_qualified"], "week", "count")
    v["ads_leads_w"] = flow((kind == "lead") & ev["channel"].isin(["google", "linkedin"]), "week", "count")
    v["pme_pipeline_m"] = flow((kind == "deal") & (ev["segment"] == "PME"), "month", "sum")
    v["eu_won_m"] = flow(merged["region"] == "EU", "month", "sum", frame=merged)
    v["avg_deal_m"] = flow(kind == "deal", "month", "mean")
    v["active_customers_m"] = flow(None, "month", "nunique")
    v["max_won_w"] = flow(kind == "won", "week", "max")
    v["demos_d"] = flow(kind == "demo", "day", "count")
    v["win_rate_m"] = flow(kind == "won", "month", "count") / flow(kind.isin(["won", "lost"]), "month", "count")
    v["qual_rate_w"] = v["qualified_leads_w"] / v["leads_w"]
    v["demo_rate_w"] = v["demos_w"] / v["leads_w"]
    v["conversion_m"] = flow(kind == "won", "month", "count") / flow(kind == "deal", "month", "count")
    v["revenue_per_visit_m"] = v["won_rev_m"] / flow(kind == "visit", "month", "count")
    v["eu_share_m"] = v["eu_won_m"] / flow(None, "month", "sum", frame=merged)
    v["mrr_m"] = snapshot("month", "sum")
    v["active_subs_m"] = snapshot("month", "count")
    v["pme_mrr_m"] = snapshot("month", "sum", subs["segment"] == "PME")
    v["mrr_w"] = snapshot("week", "sum")
    v["pipeline_per_demo_w"] = v["pipeline_w"] / v["demos_w"]
    v["net_new_mrr_m"] = v["mrr_m"].diff()
    won = v["won_rev_m"]
    v["won_ytd_m"] = won.groupby(won.index.year).cumsum()
    v["leads_4w"] = v["leads_w"].rolling(4).sum()
    seconds = time.perf_counter() - t0
    values = {k: {p.date().isoformat(): (None if (x is None or np.isnan(x)) else float(x)) for p, x in s.items()}
              for k, s in v.items()}
    return {"seconds": seconds, "values": values, "queries": 0, "peak_mb": peak_mb()}


def compare(reference: dict[str, dict[str, float | None]], other: dict[str, dict[str, float | None]]) -> tuple[int, float]:
    """(mismatching values, max relative difference) over the reference's periods."""
    bad, worst = 0, 0.0
    for key, ref in reference.items():
        got = other.get(key, {})
        for p, v in ref.items():
            g = got.get(p)
            if v is None or g is None:
                bad += (v is None) != (g is None)
                continue
            rel = abs(g - v) / max(abs(v), 1e-9)
            worst = max(worst, rel)
            bad += rel > 1e-9
    return bad, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--worker", choices=["kpilot", "sql", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = {"kpilot": run_kpilot, "sql": run_sql, "pandas": run_pandas}[args.worker](args.db)
        args.out.write_bytes(pickle.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        generate(db, args.rows)
        gen = time.perf_counter() - t0
        results = {}
        for who in ("sql", "kpilot", "pandas"):
            out = Path(tmp) / f"{who}.pickle"
            env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
            subprocess.run([sys.executable, __file__, "--worker", who, "--db", str(db), "--out", str(out)],
                           check=True, env=env)
            results[who] = pickle.loads(out.read_bytes())
    ref = results["sql"]["values"]
    summary = {
        "rows": args.rows, "metrics": len(METRICS), "generate_seconds": round(gen, 2),
        "kpilot_seconds": round(results["kpilot"]["seconds"], 3),
        "sql_seconds": round(results["sql"]["seconds"], 3),
        "pandas_seconds": round(results["pandas"]["seconds"], 3),
        "kpilot_vs_sql": round(results["kpilot"]["seconds"] / results["sql"]["seconds"], 3),
        "pandas_vs_kpilot": round(results["pandas"]["seconds"] / results["kpilot"]["seconds"], 2),
        "kpilot_queries": results["kpilot"]["queries"], "sql_queries": results["sql"]["queries"],
        "kpilot_peak_mb": round(results["kpilot"]["peak_mb"]), "sql_peak_mb": round(results["sql"]["peak_mb"]),
        "pandas_peak_mb": round(results["pandas"]["peak_mb"]),
    }
    for who in ("kpilot", "pandas"):
        bad, worst = compare(ref, results[who]["values"])
        summary[f"{who}_mismatches"] = bad
        summary[f"{who}_max_rel_diff"] = worst if not math.isnan(worst) else None
    if args.format == "json":
        print(json.dumps(summary, indent=2))
        return
    print(f"{args.rows:,} event rows, {len(METRICS)} metrics (generated in {gen:.1f} s), 2 cores")
    print(f"{'':10}{'seconds':>10}{'queries':>9}{'peak MB':>9}  values vs hand-written SQL")
    for who in ("sql", "kpilot", "pandas"):
        r = results[who]
        check = "reference" if who == "sql" else (f"{summary[who + '_mismatches']} mismatches, max rel diff "
                                                   f"{summary[who + '_max_rel_diff']:.1e}")
        print(f"{who:10}{r['seconds']:>10.3f}{r['queries']:>9}{r['peak_mb']:>9.0f}  {check}")
    print(f"kpilot / hand-written SQL: {summary['kpilot_vs_sql']:.2f}x   (goal <= 1.5x)")
    print(f"pandas / kpilot:           {summary['pandas_vs_kpilot']:.1f}x   (goal >= 10x)")


if __name__ == "__main__":
    main()
