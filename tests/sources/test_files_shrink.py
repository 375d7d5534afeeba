"""A file that would empty a table, or shrink it by more than half, is refused unless the shrink is allowed;
and the record of the latest failed load that reads use to say their data is the last good one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kpilot.model.errors import msg
from kpilot.sources.files import LoadError, discover, load_tables
from kpilot.sources.files.state import LoadFailure, clear_failures, last_failure, record_failure
from tests.sources.helpers import Ws


def _lines(n: int, start: int = 0) -> str:
    return "id,day\n" + "".join(f"{i},2026-01-{1 + i % 28:02d}\n" for i in range(start, start + n))


def test_a_csv_cut_to_its_header_is_refused_and_changes_nothing(ws: Ws) -> None:
    ws.write("other.csv", "x\n1\n")
    path = ws.write("deals.csv", _lines(3))
    ws.load()
    before = ws.loads()
    ws.write("other.csv", "x\n1\n2\n")  # a real change beside it is not written either
    path.write_text("id,day\n")
    with pytest.raises(LoadError) as e:
        ws.load()
    assert str(e.value) == (
        "data/deals.csv holds no rows now; loading it would empty table 'deals', which holds 3 row(s). "
        "Fix: check the export that wrote the file (was it cut short, or filtered?); if the table is meant to be "
        "empty, run `kpilot load --allow-shrink`.\nNothing was loaded: every table keeps its previous data.")
    assert len(ws.rows("deals")) == 3
    assert ws.rows("other") == [(1,)]
    assert ws.loads() == before


def test_a_shrink_by_more_than_half_is_refused_with_both_counts(ws: Ws) -> None:
    path = ws.write("deals.csv", _lines(7))
    ws.load()
    path.write_text(_lines(3))
    with pytest.raises(LoadError) as e:
        ws.load()
    assert str(e.value).startswith(
        "data/deals.csv holds 3 row(s) where table 'deals' holds 7: loading it would remove more than half of "
        "the table. Fix: check the export that wrote the file (was it cut short, or filtered?); if the shrink is "
        "intended, run `kpilot load --allow-shrink`.\n")
    assert len(ws.rows("deals")) == 7


def test_every_refused_table_is_named_at_once(ws: Ws) -> None:
    a = ws.write("a.csv", _lines(4))
    b = ws.write("b.csv", _lines(4))
    ws.load()
    a.write_text(_lines(1))
    b.write_text("id,day\n")
    with pytest.raises(LoadError) as e:
        ws.load()
    text = str(e.value)
    assert "data/a.csv holds 1 row(s) where table 'a' holds 4" in text
    assert "data/b.csv holds no rows now; loading it would empty table 'b', which holds 4 row(s)" in text


def test_half_the_rows_or_more_loads(ws: Ws) -> None:
    path = ws.write("deals.csv", _lines(4))
    ws.load()
    path.write_text(_lines(2))
    [t] = ws.load().tables
    assert (t.status, t.rows, t.version) == ("loaded", 2, 2)


def test_allow_shrink_loads_an_emptied_or_shrunk_file(ws: Ws) -> None:
    path = ws.write("deals.csv", _lines(5))
    ws.load()
    path.write_text(_lines(1))
    [t] = load_tables(ws.con, discover(ws.source(), ws.root), allow_shrink=True).tables
    assert (t.status, t.rows, t.version) == ("loaded", 1, 2)
    path.write_text("id,day\n")
    [t] = load_tables(ws.con, discover(ws.source(), ws.root), allow_shrink=True).tables
    assert (t.status, t.rows, t.version) == ("loaded", 0, 3)
    # An empty table cannot shrink: the next file loads whatever it holds.
    path.write_text("id,day\n")
    [t] = ws.load(force=True).tables
    assert (t.rows, t.version) == (0, 4)


def test_a_first_load_is_never_refused(ws: Ws) -> None:
    ws.write("deals.csv", "id,day\n")
    [t] = ws.load().tables
    assert (t.status, t.rows) == ("loaded", 0)


def test_a_table_dropped_by_hand_holds_nothing_to_lose(ws: Ws) -> None:
    path = ws.write("deals.csv", _lines(5))
    ws.load()
    ws.con.execute("DROP TABLE deals")
    path.write_text(_lines(1))
    [t] = ws.load().tables
    assert (t.status, t.rows) == ("loaded", 1)


def test_a_shrunk_parquet_file_is_refused_too(ws: Ws) -> None:
    ws.con.execute(f"COPY (SELECT range AS id FROM range(10)) TO '{ws.data / 't.parquet'}' (FORMAT parquet)")
    ws.load(ws.source("parquet"))
    ws.con.execute(f"COPY (SELECT range AS id FROM range(0)) TO '{ws.data / 't.parquet'}' (FORMAT parquet)")
    with pytest.raises(LoadError, match=r"data/t\.parquet holds no rows now; loading it would empty table 't'"):
        ws.load(ws.source("parquet"))
    assert len(ws.rows("t")) == 10


# --- the record of the latest failed load ----------------------------------------------------------


def test_the_latest_failure_is_recorded_per_scope_and_cleared_by_a_success(ws: Ws) -> None:
    assert last_failure(ws.con) is None
    clear_failures(ws.con, None)  # nothing recorded yet: nothing to do, nothing created
    assert ws.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'kpilot'").fetchall() == [(0,)]
    reason = msg("{path} holds no rows now; loading it would empty table '{table}', which holds {before} row(s). "
                 "Fix: check the export that wrote the file (was it cut short, or filtered?); if the table is meant "
                 "to be empty, run `kpilot load --allow-shrink`.", path="data/deals.csv", table="deals", before=3)
    at = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    record_failure(ws.con, None, reason, at)
    found = last_failure(ws.con)
    assert found == LoadFailure(at, reason, None)
    assert found is not None
    # Kept as a message, so that it shows in the reader's language.
    assert found.message.template == reason.template
    assert dict(found.message.params) == {"path": "data/deals.csv", "table": "deals", "before": 3}
    later = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    record_failure(ws.con, "crm", msg("source '{source}' has no `path:`. Fix: give the file or folder to read, "
                                      "relative to the workspace folder, e.g. `path: data/`.", source="crm"), later)
    assert last_failure(ws.con) == LoadFailure(later, last_failure(ws.con).message, "crm")  # type: ignore[union-attr]
    clear_failures(ws.con, "crm")  # that source loaded: the failure of the load of every source stays
    assert last_failure(ws.con) == LoadFailure(at, reason, None)
    clear_failures(ws.con, None)  # every source loaded
    assert last_failure(ws.con) is None


def test_a_nested_message_survives_the_record(ws: Ws) -> None:
    path = ws.write("deals.csv", _lines(3))
    ws.load()
    path.write_text("id,day\n")
    with pytest.raises(LoadError) as e:
        ws.load()
    record_failure(ws.con, None, e.value.message, datetime(2026, 1, 1, tzinfo=UTC))
    found = last_failure(ws.con)
    assert found is not None
    assert found.message == e.value.message
    assert found.message.render(lambda s: s.upper()) == e.value.message.render(lambda s: s.upper())
