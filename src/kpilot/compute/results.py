"""Analysis results and findings kept in the workspace's DuckDB (schema `kpilot`).

`kpilot.analyses` holds the result of each analysis (lead-lag edges, forecasts, audit) as JSON, one per
as-of date it was computed for (a replay with --as-of records its own date and never replaces today's):
the web app and the alerts read the latest one up to their date instead of recomputing.
`kpilot.findings` keeps every early warning and anomaly ever raised, keyed by what it is about, so
that re-running an analysis updates a finding (last_seen) and never loses or duplicates one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from kpilot import warehouse as schema


@dataclass(frozen=True)
class StoredRun:
    kind: str
    as_of: date
    computed_at: datetime
    payload: Any


@dataclass(frozen=True)
class FindingRecord:
    id: str
    kind: str
    metric: str
    period: date | None
    severity: str
    first_seen: datetime
    last_seen: datetime
    as_of: date
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "metric": self.metric,
                "period": self.period.isoformat() if self.period else None, "severity": self.severity,
                "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat(),
                "as_of": self.as_of.isoformat(), **self.payload}


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    schema.ensure_schema(con)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def save_run(con: duckdb.DuckDBPyConnection, kind: str, as_of: date, payload: Any) -> None:
    """Replace the stored result of one analysis as of one date (one transaction: a reader sees the old or
    the new one)."""
    ensure_schema(con)
    text = json.dumps(payload, ensure_ascii=False, default=str)
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM kpilot.analyses WHERE kind = ? AND as_of = ?", [kind, as_of])
        con.execute("INSERT INTO kpilot.analyses VALUES (?, ?, ?, ?)", [kind, as_of, _now(), text])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def load_run(con: duckdb.DuckDBPyConnection, kind: str, as_of: date | None = None) -> StoredRun | None:
    """The latest stored result of an analysis computed as of `as_of` or earlier (any date when None)."""
    ensure_schema(con)
    rows = con.execute("SELECT kind, as_of, computed_at, payload FROM kpilot.analyses WHERE kind = ? "
                       "AND (?::DATE IS NULL OR as_of <= ?::DATE) ORDER BY as_of DESC LIMIT 1",
                       [kind, as_of, as_of]).fetchall()
    if not rows:
        return None
    k, as_of, at, text = rows[0]
    return StoredRun(k, as_of, at, json.loads(text))


def finding_id(kind: str, metric: str, period: date | None, about: Sequence[object] = ()) -> str:
    """A stable id: the same warning about the same period is one finding however often it is raised."""
    key = json.dumps([kind, metric, period.isoformat() if period else None, [str(a) for a in about]])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def record_findings(con: duckdb.DuckDBPyConnection, findings: Sequence[Mapping[str, Any]], as_of: date) -> int:
    """Insert new findings, refresh the ones seen before (payload, last_seen); returns how many are new.

    Each finding needs id, kind, metric, period (date or None), severity; the rest is its payload.
    Nothing is ever deleted here: a finding raised once stays on record.
    """
    ensure_schema(con)
    now = _now()
    new = 0
    con.execute("BEGIN")
    try:
        for f in findings:
            payload = {k: v for k, v in f.items() if k not in ("id", "kind", "metric", "period", "severity")}
            text = json.dumps(payload, ensure_ascii=False, default=str)
            seen = con.execute("SELECT count(*) FROM kpilot.findings WHERE id = ?", [f["id"]]).fetchall()[0][0]
            if seen:
                con.execute("UPDATE kpilot.findings SET last_seen = ?, severity = ?, as_of = ?, payload = ? "
                            "WHERE id = ?", [now, f["severity"], as_of, text, f["id"]])
            else:
                con.execute("INSERT INTO kpilot.findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [f["id"], f["kind"], f["metric"], f["period"], f["severity"], now, now, as_of, text])
                new += 1
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return new


def list_findings(con: duckdb.DuckDBPyConnection, *, kind: str | None = None, metric: str | None = None
                  ) -> list[FindingRecord]:
    """Findings on record, newest period first."""
    ensure_schema(con)
    rows = con.execute(
        "SELECT id, kind, metric, period, severity, first_seen, last_seen, as_of, payload FROM kpilot.findings "
        "WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR metric = ?) ORDER BY period DESC NULLS LAST, id",
        [kind, kind, metric, metric]).fetchall()
    return [FindingRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8])) for r in rows]
