"""Benchmark: kpilot's ingestion (CSV load, PostgreSQL sync) against DuckDB's own read_csv and a plain COPY.

    python benchmarks/ingest.py [--rows 10000000] [--pg-rows 1000000] [--pg-url URL] [--no-postgres]
                                [--repeat 1] [--format text|json]

CSV: generates N rows (date, channel, amount, id) into a CSV file in a temporary folder, then times
  - kpilot: `WorkspaceService.load()` of a workspace whose csv source points at the file (sniffing, the
    definitions' checks, the atomic load and its bookkeeping included), into a fresh warehouse;
  - duckdb: `CREATE TABLE AS SELECT * FROM read_csv(...)` on the same file, into a fresh DuckDB file.
PostgreSQL: creates a table of M rows (same columns) in the server at --pg-url (dropped afterwards), then
  - kpilot: `WorkspaceService.sync()` of a postgres source copying it in full (its default batch size);
  - copy: `COPY (SELECT ...) TO STDOUT (FORMAT csv)` read through psycopg into a file, then read_csv into a
    fresh DuckDB file: the plainest fast path a person would write by hand.
Every contender's table is checked (row count, sum of amount, sum of id) before figures are printed.
The ratio is kpilot's speed over the native one (goal: at least 0.8).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

CHECK = "SELECT count(*), round(sum(amount), 2), sum(id) FROM {table}"
GOAL = 0.8


def generate_csv(path: Path, rows: int) -> None:
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    con.execute(f"""COPY (SELECT DATE '2023-01-01' + (random() * 1095)::INT AS date,
        ['google', 'linkedin', 'seo', 'referral', 'outbound', 'events'][1 + floor(random() * 6)::INT] AS channel,
        round(random() * 20000, 2) AS amount, i AS id
        FROM range({int(rows)}) t(i)) TO '{path.as_posix()}' (HEADER, DELIMITER ',')""")
    con.close()


def workspace(folder: Path, source: dict[str, object]) -> Path:
    import yaml

    doc = {
        "workspace": "ingest", "timezone": "UTC", "sources": [source],
        "models": [{"key": "events", "table": "events", "time": "date"}],
        "metrics": [{"key": "amount", "model": "events", "measure": "sum(amount)", "grain": "month"}],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return folder


def best(repeat: int, run: Callable[[int], tuple[float, tuple[object, ...]]]) -> tuple[float, tuple[object, ...]]:
    """The fastest of `repeat` runs (each on fresh state): seconds and the table's check values."""
    results = [run(i) for i in range(repeat)]
    return min(results, key=lambda r: r[0])


def kpilot_csv(tmp: Path, csv: Path, attempt: int) -> tuple[float, tuple[object, ...]]:
    from kpilot.service import WorkspaceService

    ws = workspace(tmp / f"ws-csv-{attempt}", {"key": "files", "type": "csv", "path": str(csv.parent)})
    with WorkspaceService(ws, state_dir=ws / "state") as svc:
        t0 = time.perf_counter()
        svc.load()
        seconds = time.perf_counter() - t0
        check = svc.con.execute(CHECK.format(table="events")).fetchone()
    assert check is not None
    return seconds, tuple(check)


def duckdb_csv(tmp: Path, csv: Path, attempt: int) -> tuple[float, tuple[object, ...]]:
    con = duckdb.connect(str(tmp / f"native-csv-{attempt}.duckdb"))
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{csv.as_posix()}')")
    seconds = time.perf_counter() - t0
    check = con.execute(CHECK.format(table="events")).fetchone()
    con.close()
    assert check is not None
    return seconds, tuple(check)


def create_pg_table(url: str, table: str, rows: int) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        pg.execute(sql.SQL("CREATE TABLE {} (date DATE NOT NULL, channel TEXT NOT NULL, amount NUMERIC(12, 2) NOT NULL, "
                           "id BIGINT PRIMARY KEY)").format(sql.Identifier(table)))
        pg.execute(sql.SQL("""INSERT INTO {} SELECT DATE '2023-01-01' + (random() * 1095)::INT,
            (ARRAY['google', 'linkedin', 'seo', 'referral', 'outbound', 'events'])[1 + floor(random() * 6)::INT],
            round((random() * 20000)::NUMERIC, 2), i FROM generate_series(0, %s - 1) i""").format(sql.Identifier(table)),
                   [rows])
        pg.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def drop_pg_table(url: str, table: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def kpilot_pg(tmp: Path, url: str, table: str, batch_size: int | None, attempt: int) -> tuple[float, tuple[object, ...]]:
    from kpilot.service import WorkspaceService

    source: dict[str, object] = {"key": "pg", "type": "postgres", "url_env": "KPILOT_BENCH_PG_URL",
                                 "tables": {"events": {"table": f"public.{table}"}}}
    if batch_size:
        source["batch_size"] = batch_size
    ws = workspace(tmp / f"ws-pg-{attempt}", source)
    os.environ["KPILOT_BENCH_PG_URL"] = url  # the URL never goes in kpilot.yaml
    with WorkspaceService(ws, state_dir=ws / "state") as svc:
        t0 = time.perf_counter()
        report = svc.sync()
        seconds = time.perf_counter() - t0
        assert not report.failed, [t.error for t in report.failed]
        check = svc.con.execute(CHECK.format(table="events")).fetchone()
    assert check is not None
    return seconds, tuple(check)


def copy_pg(tmp: Path, url: str, table: str, attempt: int) -> tuple[float, tuple[object, ...]]:
    import psycopg
    from psycopg import sql

    dump = tmp / f"copy-{attempt}.csv"
    con = duckdb.connect(str(tmp / f"native-pg-{attempt}.duckdb"))
    t0 = time.perf_counter()
    with psycopg.connect(url) as pg, pg.cursor() as cur, dump.open("wb") as out:
        query = sql.SQL("COPY (SELECT date, channel, amount, id FROM {}) TO STDOUT (FORMAT csv, HEADER)").format(
            sql.Identifier(table))
        with cur.copy(query) as copy:
            for chunk in copy:
                out.write(chunk)
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{dump.as_posix()}', columns = {{'date': 'DATE', "
                "'channel': 'VARCHAR', 'amount': 'DECIMAL(12,2)', 'id': 'BIGINT'}, header = true)")
    seconds = time.perf_counter() - t0
    check = con.execute(CHECK.format(table="events")).fetchone()
    con.close()
    dump.unlink()
    assert check is not None
    return seconds, tuple(check)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="CSV rows (default 10 000 000)")
    parser.add_argument("--pg-rows", type=int, default=None,
                        help="PostgreSQL rows (default 1 000 000, at most --rows)")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true", help="time the CSV load only")
    parser.add_argument("--batch-size", type=int, default=None, help="the postgres source's batch_size "
                                                                     "(default: kpilot's, 10 000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender; the fastest counts")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args()
    pg_rows = args.pg_rows if args.pg_rows is not None else min(1_000_000, args.rows)
    summary: dict[str, object] = {"csv_rows": args.rows, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="kpilot-ingest-") as name:
        tmp = Path(name)
        csv = tmp / "data" / "events.csv"
        csv.parent.mkdir()
        t0 = time.perf_counter()
        generate_csv(csv, args.rows)
        summary["csv_generate_seconds"] = round(time.perf_counter() - t0, 2)
        summary["csv_mb"] = round(csv.stat().st_size / 1e6, 1)
        native_s, native_check = best(args.repeat, lambda i: duckdb_csv(tmp, csv, i))
        kpilot_s, kpilot_check = best(args.repeat, lambda i: kpilot_csv(tmp, csv, i))
        assert kpilot_check == native_check, (kpilot_check, native_check)
        summary.update(csv_duckdb_seconds=round(native_s, 3), csv_kpilot_seconds=round(kpilot_s, 3),
                       csv_duckdb_rows_per_s=round(args.rows / native_s), csv_kpilot_rows_per_s=round(args.rows / kpilot_s),
                       csv_ratio=round(native_s / kpilot_s, 3))
        if not args.no_postgres:
            table = f"kpilot_bench_ingest_{os.getpid()}"
            summary["pg_rows"] = pg_rows
            t0 = time.perf_counter()
            create_pg_table(args.pg_url, table, pg_rows)
            summary["pg_create_seconds"] = round(time.perf_counter() - t0, 2)
            try:
                copy_s, copy_check = best(args.repeat, lambda i: copy_pg(tmp, args.pg_url, table, i))
                sync_s, sync_check = best(args.repeat, lambda i: kpilot_pg(tmp, args.pg_url, table, args.batch_size, i))
            finally:
                drop_pg_table(args.pg_url, table)
            assert sync_check == copy_check, (sync_check, copy_check)
            summary.update(pg_copy_seconds=round(copy_s, 3), pg_kpilot_seconds=round(sync_s, 3),
                           pg_copy_rows_per_s=round(pg_rows / copy_s), pg_kpilot_rows_per_s=round(pg_rows / sync_s),
                           pg_ratio=round(copy_s / sync_s, 3), pg_batch_size=args.batch_size or 10_000)
    if args.format == "json":
        print(json.dumps(summary, indent=2))
        return
    print(f"CSV: {args.rows:,} rows, {summary['csv_mb']} MB (generated in {summary['csv_generate_seconds']} s), "
          f"{summary['cores']} cores; values checked equal")
    print(f"{'':34}{'seconds':>10}{'rows/s':>14}")
    print(f"{'duckdb read_csv (CREATE TABLE AS)':34}{native_s:>10.3f}{args.rows / native_s:>14,.0f}")
    print(f"{'kpilot load':34}{kpilot_s:>10.3f}{args.rows / kpilot_s:>14,.0f}")
    print(f"kpilot / duckdb speed: {summary['csv_ratio']:.2f}   (goal >= {GOAL})")
    if not args.no_postgres:
        print(f"\nPostgreSQL: {pg_rows:,} rows (table created in {summary['pg_create_seconds']} s); values checked equal")
        print(f"{'':34}{'seconds':>10}{'rows/s':>14}")
        print(f"{'COPY TO STDOUT + read_csv':34}{copy_s:>10.3f}{pg_rows / copy_s:>14,.0f}")
        print(f"{'kpilot sync (batch ' + format(summary['pg_batch_size'], ',') + ')':34}{sync_s:>10.3f}"
              f"{pg_rows / sync_s:>14,.0f}")
        print(f"kpilot / COPY speed:   {summary['pg_ratio']:.2f}   (goal >= {GOAL})")


if __name__ == "__main__":
    main()
