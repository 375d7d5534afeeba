"""Materialized series are refreshed incrementally: appended rows recompute only the periods they touch."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from kpilot.service import WorkspaceService

YAML = """
workspace: inc
timezone: Europe/Paris
sources: [{key: files, type: csv, path: data/}]
models:
  - {key: events, table: events, time: at}
  - {key: subs, table: subs, validity: {from: start_date, to: end_date}}
metrics:
  - {key: amount, model: events, measure: sum(amount), grain: week}
  - {key: big, model: events, measure: count(*), filter: "amount > 50", grain: month}
  - {key: share_big, type: ratio, grain: month,
     numerator: {model: events, measure: count(*), filter: "amount > 50"},
     denominator: {model: events, measure: count(*)}}
  - {key: mrr, model: subs, type: snapshot, measure: sum(mrr), grain: month}
"""


def _events(start: date, days: int, offset: int = 0) -> str:
    return "".join(f"{offset + i},{start + timedelta(days=i)} 10:00:00,{(offset + i) * 7 % 100}\n" for i in range(days))


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    (tmp_path / "data" / "events.csv").write_text("id,at,amount\n" + _events(date(2026, 1, 1), 80), encoding="utf-8")
    (tmp_path / "data" / "subs.csv").write_text(
        "id,start_date,end_date,mrr\n1,2026-01-10,,100\n2,2026-02-01,2026-03-15,50\n", encoding="utf-8")
    return tmp_path


def _values(svc: WorkspaceService, key: str) -> list[tuple[str, object]]:
    return [(r["period"], r["value"]) for r in svc.series(key, as_of=None)]


def test_append_recomputes_from_the_first_touched_period(ws: Path, tmp_path_factory) -> None:
    state = tmp_path_factory.mktemp("inc")
    svc = WorkspaceService(ws, state_dir=state)
    svc.today = lambda: date(2026, 6, 30)  # type: ignore[method-assign]
    svc.load()
    first = svc.compute()
    assert first.aggregates_recomputed == first.aggregates_total > 0

    # Nothing changed: nothing is recomputed.
    svc.load()
    again = svc.compute()
    assert again.aggregates_recomputed == 0

    # Rows appended at the end of the file: loaded as an append, recomputed incrementally.
    with (ws / "data" / "events.csv").open("a", encoding="utf-8") as fh:
        fh.write(_events(date(2026, 3, 22), 40, offset=1000))
    report = svc.load()
    assert [t.status for t in report.tables if t.table == "events"] == ["appended"]
    inc = svc.compute()
    assert inc.aggregates_incremental == 3  # amount by week; count(*) > 50 and count(*) by month; not mrr
    assert inc.aggregates_recomputed == 3
    incremental = {k: _values(svc, k) for k in ("amount", "big", "share_big", "mrr")}
    svc.close()

    # The same workspace computed from scratch gives the same values.
    fresh = WorkspaceService(ws, state_dir=tmp_path_factory.mktemp("fresh"))
    fresh.today = lambda: date(2026, 6, 30)  # type: ignore[method-assign]
    fresh.load()
    fresh.compute()
    for key, values in incremental.items():
        assert values == _values(fresh, key), key
    fresh.close()


def test_a_changed_row_recomputes_everything(ws: Path, tmp_path_factory) -> None:
    svc = WorkspaceService(ws, state_dir=tmp_path_factory.mktemp("chg"))
    svc.today = lambda: date(2026, 6, 30)  # type: ignore[method-assign]
    svc.load()
    svc.compute()
    path = ws / "data" / "events.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("\n0,2026-01-01 10:00:00,0\n",
                                                               "\n0,2026-01-01 10:00:00,99\n"), encoding="utf-8")
    assert [t.status for t in svc.load().tables if t.table == "events"] == ["loaded"]
    report = svc.compute()
    assert report.aggregates_incremental == 0 and report.aggregates_recomputed == 3  # subs untouched
    jan = dict(_values(svc, "big"))["2026-01-01"]
    assert jan == sum(1 for i in range(31) if (i * 7 % 100 if i else 99) > 50)
    svc.close()


def test_moving_the_as_of_date_refreshes_the_current_snapshot(ws: Path, tmp_path_factory) -> None:
    svc = WorkspaceService(ws, state_dir=tmp_path_factory.mktemp("asof"))
    svc.today = lambda: date(2026, 3, 10)  # type: ignore[method-assign]
    svc.load()
    svc.compute()
    assert dict(_values(svc, "mrr"))["2026-03-01"] == 150.0  # sub 2 still active on March 10
    svc.today = lambda: date(2026, 3, 20)  # type: ignore[method-assign]
    report = svc.compute()
    assert report.aggregates_recomputed == 1  # only the snapshot depends on the as-of date
    assert dict(_values(svc, "mrr"))["2026-03-01"] == 100.0  # ended on March 15
    svc.close()
