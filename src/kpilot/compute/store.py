"""Materialized aggregates and series in the workspace's DuckDB (schema `kpilot`).

`kpilot.aggregates` holds one value per aggregate, grain and period; `kpilot.agg_state` remembers
which table versions and as-of date they were computed from, so a refresh recomputes only what
changed; `kpilot.series` holds the composed metric values that the board, the API and the CLI read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np

from kpilot import warehouse as schema


@dataclass(frozen=True)
class TableVersion:
    version: int
    change: str  # "replace" | "append"
    append_min: dict[str, str]


@dataclass(frozen=True)
class AggState:
    versions: dict[str, int | None]
    as_of: date | None
    first: date | None
    last: date | None


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    schema.ensure_schema(con)


def table_versions(con: duckdb.DuckDBPyConnection) -> dict[str, TableVersion]:
    """Versions of loaded tables, from the loader's bookkeeping (empty before any load)."""
    # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses the next query.
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'kpilot' AND table_name = 'loads'"
    ).fetchall()
    if not exists or not exists[0][0]:
        return {}
    rows = con.execute("SELECT table_name, version, change, append_min FROM kpilot.loads").fetchall()
    out = {}
    for name, version, change, append_min in rows:
        out[name] = TableVersion(int(version), change or "replace", json.loads(append_min) if append_min else {})
    return out


def read_state(con: duckdb.DuckDBPyConnection, agg_id: str, grain: str) -> AggState | None:
    rows = con.execute("SELECT versions, as_of, first, last FROM kpilot.agg_state WHERE agg_id = ? AND grain = ?",
                       [agg_id, grain]).fetchall()
    if not rows:
        return None
    row = rows[0]
    return AggState(json.loads(row[0]), row[1], row[2], row[3])


def read_aggregate(con: duckdb.DuckDBPyConnection, agg_id: str, grain: str) -> dict[date, float | None]:
    rows = con.execute("SELECT period, value FROM kpilot.aggregates WHERE agg_id = ? AND grain = ?",
                       [agg_id, grain]).fetchall()
    return {p: v for p, v in rows}


def write_aggregates(con: duckdb.DuckDBPyConnection, grain: str,
                     batch: Sequence[tuple[str, dict[date, float | None], date | None, AggState]]) -> None:
    """Replace each aggregate's rows from its `since` on (all rows when None) and record its state.

    One transaction for the whole batch: a crash leaves either the old or the new values, never a mix.
    """
    ids: list[str] = []
    periods: list[date] = []
    values: list[float | None] = []
    for agg_id, rows, since, _ in batch:
        for p, v in rows.items():
            if since is None or p >= since:
                ids.append(agg_id)
                periods.append(p)
                values.append(None if v is None or v != v else float(v))
    now = datetime.now()
    con.execute("BEGIN TRANSACTION")
    try:
        for agg_id, _, since, state in batch:
            if since is None:
                con.execute("DELETE FROM kpilot.aggregates WHERE agg_id = ? AND grain = ?", [agg_id, grain])
            else:
                con.execute("DELETE FROM kpilot.aggregates WHERE agg_id = ? AND grain = ? AND period >= ?",
                            [agg_id, grain, since])
            con.execute("DELETE FROM kpilot.agg_state WHERE agg_id = ? AND grain = ?", [agg_id, grain])
            con.execute("INSERT INTO kpilot.agg_state VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [agg_id, grain, json.dumps(state.versions, sort_keys=True), state.as_of, state.first,
                         state.last, now])
        if ids:
            # Lists go in as parameters: no Arrow/pandas round trip for a few thousand values.
            con.execute("INSERT INTO kpilot.aggregates SELECT unnest(?::VARCHAR[]), ?, unnest(?::DATE[]), "
                        "unnest(?::DOUBLE[])", [ids, grain, periods, values])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def series_digest(periods: list[date], values: np.ndarray, numerator: np.ndarray | None,
                  denominator: np.ndarray | None) -> str:
    h = hashlib.sha1()
    h.update(",".join(p.isoformat() for p in periods).encode())
    for a in (values, numerator, denominator):
        h.update(b"|" + (np.ascontiguousarray(a, dtype=float).tobytes() if a is not None else b"-"))
    return h.hexdigest()


def stored_digest(con: duckdb.DuckDBPyConnection, metric: str, grain: str) -> str | None:
    rows = con.execute("SELECT definition FROM kpilot.series_state WHERE metric = ? AND grain = ?",
                       [metric, grain]).fetchall()
    return rows[0][0] if rows else None


def write_series(con: duckdb.DuckDBPyConnection, metric: str, grain: str, periods: list[date],
                 values: np.ndarray, numerator: np.ndarray | None, denominator: np.ndarray | None,
                 definition: str, as_of: date) -> bool:
    """Replace a metric's materialized series at a grain; returns False when it had not changed."""
    digest = hashlib.sha1((definition + series_digest(periods, values, numerator, denominator)).encode()).hexdigest()
    if stored_digest(con, metric, grain) == digest:
        return False

    def col(a: np.ndarray | None) -> list[float | None]:
        if a is None:
            return [None] * len(periods)
        return [None if np.isnan(x) else float(x) for x in a]

    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM kpilot.series WHERE metric = ? AND grain = ?", [metric, grain])
        if periods:
            con.execute("INSERT INTO kpilot.series SELECT ?, ?, unnest(?::DATE[]), unnest(?::DOUBLE[]), "
                        "unnest(?::DOUBLE[]), unnest(?::DOUBLE[])",
                        [metric, grain, periods, col(values), col(numerator), col(denominator)])
        con.execute("DELETE FROM kpilot.series_state WHERE metric = ? AND grain = ?", [metric, grain])
        con.execute("INSERT INTO kpilot.series_state VALUES (?, ?, ?, ?, ?)",
                    [metric, grain, digest, as_of, datetime.now()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return True


def drop_unknown(con: duckdb.DuckDBPyConnection, metric_keys: list[str]) -> None:
    """Forget materialized series of metrics no longer defined."""
    if not metric_keys:
        con.execute("DELETE FROM kpilot.series")
        con.execute("DELETE FROM kpilot.series_state")
        return
    placeholders = ", ".join("?" for _ in metric_keys)
    con.execute(f"DELETE FROM kpilot.series WHERE metric NOT IN ({placeholders})", metric_keys)
    con.execute(f"DELETE FROM kpilot.series_state WHERE metric NOT IN ({placeholders})", metric_keys)

