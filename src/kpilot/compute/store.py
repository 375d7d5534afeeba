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


def read_states(con: duckdb.DuckDBPyConnection, agg_ids: Sequence[str], grain: str) -> dict[str, AggState]:
    """The recorded state of each of `agg_ids` that has one, in one query."""
    rows = con.execute("SELECT agg_id, versions, as_of, first, last FROM kpilot.agg_state WHERE grain = ? "
                       "AND list_contains(?::VARCHAR[], agg_id)", [grain, list(agg_ids)]).fetchall()
    return {r[0]: AggState(json.loads(r[1]), r[2], r[3], r[4]) for r in rows}


def read_aggregates(con: duckdb.DuckDBPyConnection, agg_ids: Sequence[str], grain: str
                    ) -> dict[str, dict[date, float | None]]:
    """The stored rows of each of `agg_ids` (an empty dict for one without rows), in one query."""
    out: dict[str, dict[date, float | None]] = {a: {} for a in agg_ids}
    rows = con.execute("SELECT agg_id, period, value FROM kpilot.aggregates WHERE grain = ? "
                       "AND list_contains(?::VARCHAR[], agg_id)", [grain, list(agg_ids)]).fetchall()
    for agg_id, p, v in rows:
        out[agg_id][p] = v
    return out


def write_aggregates(con: duckdb.DuckDBPyConnection, grain: str,
                     batch: Sequence[tuple[str, dict[date, float | None], date | None, AggState]]) -> None:
    """Replace each aggregate's rows from its `since` on (all rows when None) and record its state.

    One transaction for the whole batch: a crash leaves either the old or the new values, never a mix.
    A handful of statements whatever the batch's size: each one takes the batch's lists as parameters.
    """
    if not batch:
        return
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
    batch_ids = [b[0] for b in batch]
    sinces = [b[2] for b in batch]
    states = [b[3] for b in batch]
    con.execute("BEGIN TRANSACTION")
    try:
        # Each aggregate loses its rows from its own `since` on (all of them when since is NULL).
        con.execute("DELETE FROM kpilot.aggregates a USING (SELECT unnest(?::VARCHAR[]) AS agg_id, "
                    "unnest(?::DATE[]) AS since) d WHERE a.grain = ? AND a.agg_id = d.agg_id "
                    "AND (d.since IS NULL OR a.period >= d.since)", [batch_ids, sinces, grain])
        con.execute("DELETE FROM kpilot.agg_state WHERE grain = ? AND list_contains(?::VARCHAR[], agg_id)",
                    [grain, batch_ids])
        con.execute("INSERT INTO kpilot.agg_state SELECT unnest(?::VARCHAR[]), ?, unnest(?::VARCHAR[]), "
                    "unnest(?::DATE[]), unnest(?::DATE[]), unnest(?::DATE[]), ?",
                    [batch_ids, grain, [json.dumps(x.versions, sort_keys=True) for x in states],
                     [x.as_of for x in states], [x.first for x in states], [x.last for x in states], now])
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


@dataclass(frozen=True)
class SeriesRows:
    """One metric's composed series at one grain, as `write_series_batch` stores it."""
    metric: str
    grain: str
    periods: list[date]
    values: np.ndarray
    numerator: np.ndarray | None
    denominator: np.ndarray | None
    definition: str


def _column(a: np.ndarray | None, n: int) -> list[float | None]:
    if a is None:
        return [None] * n
    return [None if np.isnan(x) else float(x) for x in a]


def write_series(con: duckdb.DuckDBPyConnection, metric: str, grain: str, periods: list[date],
                 values: np.ndarray, numerator: np.ndarray | None, denominator: np.ndarray | None,
                 definition: str, as_of: date) -> bool:
    """Replace a metric's materialized series at a grain; returns False when it had not changed."""
    return bool(write_series_batch(con, [SeriesRows(metric, grain, periods, values, numerator, denominator,
                                                    definition)], as_of))


def write_series_batch(con: duckdb.DuckDBPyConnection, batch: Sequence[SeriesRows], as_of: date) -> list[str]:
    """Replace the materialized series of the batch's metrics that changed (their definition or values), in one
    transaction and a handful of statements; returns the metrics written."""
    if not batch:
        return []
    stored = {(m, g): d for m, g, d in con.execute("SELECT metric, grain, definition FROM kpilot.series_state")
              .fetchall()}
    changed: list[tuple[SeriesRows, str]] = []
    for s in batch:
        digest = hashlib.sha1((s.definition + series_digest(s.periods, s.values, s.numerator, s.denominator))
                              .encode()).hexdigest()
        if stored.get((s.metric, s.grain)) != digest:
            changed.append((s, digest))
    if not changed:
        return []
    metrics = [s.metric for s, _ in changed]
    grains = [s.grain for s, _ in changed]
    col_metric: list[str] = []
    col_grain: list[str] = []
    col_period: list[date] = []
    col_value: list[float | None] = []
    col_num: list[float | None] = []
    col_den: list[float | None] = []
    for s, _ in changed:
        n = len(s.periods)
        col_metric.extend([s.metric] * n)
        col_grain.extend([s.grain] * n)
        col_period.extend(s.periods)
        col_value.extend(_column(s.values, n))
        col_num.extend(_column(s.numerator, n))
        col_den.extend(_column(s.denominator, n))
    keys = "(SELECT unnest(?::VARCHAR[]) AS metric, unnest(?::VARCHAR[]) AS grain) d"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM kpilot.series t USING {keys} WHERE t.metric = d.metric AND t.grain = d.grain",
                    [metrics, grains])
        if col_period:
            con.execute("INSERT INTO kpilot.series SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                        "unnest(?::DATE[]), unnest(?::DOUBLE[]), unnest(?::DOUBLE[]), unnest(?::DOUBLE[])",
                        [col_metric, col_grain, col_period, col_value, col_num, col_den])
        con.execute(f"DELETE FROM kpilot.series_state t USING {keys} WHERE t.metric = d.metric "
                    "AND t.grain = d.grain", [metrics, grains])
        con.execute("INSERT INTO kpilot.series_state SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                    "unnest(?::VARCHAR[]), ?, ?", [metrics, grains, [d for _, d in changed], as_of, datetime.now()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return metrics


def drop_unknown(con: duckdb.DuckDBPyConnection, metric_keys: list[str]) -> None:
    """Forget materialized series of metrics no longer defined."""
    if not metric_keys:
        con.execute("DELETE FROM kpilot.series")
        con.execute("DELETE FROM kpilot.series_state")
        return
    placeholders = ", ".join("?" for _ in metric_keys)
    con.execute(f"DELETE FROM kpilot.series WHERE metric NOT IN ({placeholders})", metric_keys)
    con.execute(f"DELETE FROM kpilot.series_state WHERE metric NOT IN ({placeholders})", metric_keys)

