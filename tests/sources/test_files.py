"""CSV sources: discovery, dialect/encoding/format detection, and what kpilot.loads remembers."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

import kpilot.sources.files.load as files_module
from kpilot.compute import store
from kpilot.model.workspace import Source
from kpilot.sources.files import LoadError, discover, load_tables, sniff_columns, table_name
from kpilot.sources.files.state import read_records
from tests.sources.helpers import Ws


def table_versions(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Versions as the compute layer reads them (kpilot.compute.store is their one reader)."""
    return {t: v.version for t, v in store.table_versions(con).items()}


def loaded_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Column types kpilot.loads remembers from the last load."""
    return {t: rec.columns for t, rec in read_records(con).items()}

# --- discovery ----------------------------------------------------------------------------------


def test_table_names_from_file_names() -> None:
    assert table_name("deals") == "deals"
    assert table_name("Prévisions 2026") == "previsions_2026"
    assert table_name("Ad-Spend (EUR)") == "ad_spend__eur_"


def test_discover_a_folder_lists_one_table_per_csv(ws: Ws) -> None:
    ws.write("deals.csv", "a\n1\n")
    ws.write("Prévisions 2026.CSV", "a\n1\n")
    ws.write("notes.txt", "not data")
    ws.write(".hidden.csv", "a\n1\n")
    files = discover(ws.source(), ws.root)
    assert sorted((f.table, f.path.name, f.sheet) for f in files) == [
        ("deals", "deals.csv", None),
        ("previsions_2026", "Prévisions 2026.CSV", None),
    ]
    assert all(f.path.is_absolute() for f in files)


def test_discover_a_single_file_and_a_tables_mapping(ws: Ws) -> None:
    ws.write("export_2026-05.csv", "a\n1\n")
    ws.write("other.csv", "a\n1\n")
    [one] = discover(ws.source(path="data/export_2026-05.csv"), ws.root)
    assert (one.table, one.path.name) == ("export_2026_05", "export_2026-05.csv")
    mapped = discover(ws.source(tables={"deals": "export_2026-05.csv"}), ws.root)
    assert [(f.table, f.path.name) for f in mapped] == [("deals", "export_2026-05.csv")]
    with pytest.raises(LoadError) as e:
        discover(ws.source(tables={"deals": "export_2026_05.csv"}), ws.root)
    assert "table 'deals' names file 'export_2026_05.csv'" in str(e.value)
    assert "did you mean 'export_2026-05.csv'?" in str(e.value)


def test_discover_a_missing_path_says_it_is_relative_to_the_workspace(ws: Ws) -> None:
    with pytest.raises(LoadError) as e:
        discover(ws.source(path="datas/"), ws.root)
    msg = str(e.value)
    assert "'datas/' not found" in msg
    assert "relative to the workspace folder" in msg
    assert str(ws.root / "datas") in msg
    assert "did you mean 'data'?" in msg


def test_discover_refuses_two_files_giving_the_same_table(ws: Ws) -> None:
    ws.write("Deals.csv", "a\n1\n")
    ws.write("deals.csv", "a\n1\n")
    with pytest.raises(LoadError) as e:
        discover(ws.source(), ws.root)
    assert "table 'deals' would come from both data/Deals.csv and data/deals.csv" in str(e.value)
    assert "`tables:`" in str(e.value)


def test_discover_an_empty_folder_is_an_error(ws: Ws) -> None:
    with pytest.raises(LoadError, match=r"folder 'data/' holds no \*.csv or \*.tsv file"):
        discover(ws.source(), ws.root)


# --- the acceptance example -----------------------------------------------------------------------


def test_the_acme_example_loads_with_the_expected_types(tmp_path: Path, acme_dir: Path) -> None:
    con = duckdb.connect(str(tmp_path / "acme.duckdb"))
    files = discover(Source(key="files", type="csv", path="data/"), acme_dir)
    report = load_tables(con, files, required={"deals": {"amount_eur": "measure of metric pipeline_generated"}})
    rows = {t.table: t.rows for t in report.tables}
    for f in files:
        with f.path.open("rb") as fh:
            assert rows[f.table] == sum(1 for _ in fh) - 1
    cols = loaded_columns(con)
    assert cols["deals"]["amount_eur"] == "DOUBLE"
    assert cols["deals"]["created_at"] == "TIMESTAMP"
    assert cols["subscriptions"]["end_date"] == "DATE"
    assert cols["leads"]["is_mql"] == "BOOLEAN"
    assert cols["web_sessions"]["sessions"] == "BIGINT"
    first = con.execute("SELECT deal_id, amount_eur, stage FROM deals ORDER BY deal_id LIMIT 1").fetchall()
    assert first == [("D00001", 33620.0, "lost")]
    assert table_versions(con) == {t: 1 for t in rows}
    again = load_tables(con, files)
    assert {t.status for t in again.tables} == {"unchanged"}


# --- dialects, encodings, formats -------------------------------------------------------------------


def test_semicolon_delimiter_and_decimal_comma_are_detected(ws: Ws) -> None:
    ws.write("budget.csv", "mois;montant;commentaire\n2026-01;1234,56;a\n2026-02;12,5;b\n2026-03;7;c\n")
    ws.load()
    assert ws.types("budget")["montant"] == "DOUBLE"
    assert ws.rows("budget") == [("2026-01", 1234.56, "a"), ("2026-02", 12.5, "b"), ("2026-03", 7.0, "c")]


def test_declared_delimiter_and_decimal(ws: Ws) -> None:
    ws.write("t.csv", "a|b\n1|2,5\n2|3,25\n")
    ws.load(ws.source(delimiter="|", decimal=","))
    assert ws.rows("t") == [(1, 2.5), (2, 3.25)]


def test_the_same_delimiter_and_decimal_separator_are_refused(ws: Ws) -> None:
    ws.write("t.csv", "a,b\n1,2\n")
    with pytest.raises(LoadError, match=r'`decimal: ","` is also the `delimiter:`'):
        ws.load(ws.source(delimiter=",", decimal=","))


def test_tab_delimiter_is_detected(ws: Ws) -> None:
    ws.write("t.tsv", "a\tb\n1\tx y\n2\tz\n")
    ws.load()
    assert ws.rows("t") == [(1, "x y"), (2, "z")]


def test_windows_1252_is_detected_and_transcoded(ws: Ws) -> None:
    ws.write("clients.csv", "nom;ville;ca\nCafé Œuvre;Besançon;1500,5\n«Ateliers» – 2;Orléans;€\n", "cp1252")
    ws.load()
    assert ws.rows("clients") == [("Café Œuvre", "Besançon", "1500,5"), ("«Ateliers» – 2", "Orléans", "€")]


def test_latin_1_is_read_natively(ws: Ws) -> None:
    ws.write("clients.csv", "nom,ville\nCafé,Besançon\n", "latin-1")
    ws.load()
    assert ws.rows("clients") == [("Café", "Besançon")]


def test_utf8_with_bom_keeps_the_first_column_name_clean(ws: Ws) -> None:
    ws.write("t.csv", "\ufeffid,nom\n1,é\n")
    ws.load()
    assert list(ws.types("t")) == ["id", "nom"]
    assert ws.rows("t") == [(1, "é")]


def test_a_non_utf8_byte_after_the_first_megabyte_switches_to_windows_1252(ws: Ws) -> None:
    body = "".join(f"{i},plain text {i}\n" for i in range(80_000))  # > 1 MiB of ASCII
    ws.write("t.csv", ("id,label\n" + body + "80000,déjà vu €\n").encode("cp1252"))
    report = ws.load()
    assert report.tables[0].rows == 80_001
    assert ws.con.execute("SELECT label FROM t WHERE id = 80000").fetchall() == [("déjà vu €",)]


def test_latin_1_guessed_from_the_start_then_windows_1252_further_down(ws: Ws) -> None:
    # The first megabyte is latin-1 that DuckDB reads natively; a '€' (0x80) later only exists in cp1252.
    body = "".join(f"{i},détail {i}\n" for i in range(70_000))
    ws.write("t.csv", ("id,label\n" + body + "70000,prix en €\n").encode("cp1252"))
    assert ws.load().tables[0].rows == 70_001
    assert ws.con.execute("SELECT label FROM t WHERE id IN (1, 70000) ORDER BY id").fetchall() == [
        ("détail 1",), ("prix en €",),
    ]


def test_declared_encoding(ws: Ws) -> None:
    ws.write("t.csv", "a,b\n1,Zürich\n", "cp1252")
    ws.load(ws.source(encoding="cp1252"))
    assert ws.rows("t") == [(1, "Zürich")]
    ws.write("u.csv", "a,b\n1,Zürich\n", "utf-16")
    ws.load(ws.source(path="data/u.csv", encoding="utf-16"))
    assert ws.rows("u") == [(1, "Zürich")]


def test_french_dates_are_detected(ws: Ws) -> None:
    ws.write("t.csv", "jour,n\n31/01/2026,1\n28/02/2026,2\n")
    ws.load()
    assert ws.rows("t") == [(date(2026, 1, 31), 1), (date(2026, 2, 28), 2)]


def test_ambiguous_dates_are_read_day_first(ws: Ws) -> None:
    ws.write("t.csv", "jour,n\n01/02/2026,1\n03/04/2026,2\n")
    ws.load()
    assert ws.rows("t") == [(date(2026, 2, 1), 1), (date(2026, 4, 3), 2)]


def test_iso_timestamps_with_offsets(ws: Ws) -> None:
    ws.write("t.csv", "at,n\n2026-01-01T10:00:00+02:00,1\n")
    ws.load()
    assert ws.types("t")["at"] == "TIMESTAMP WITH TIME ZONE"
    assert ws.con.execute("SELECT strftime(\"at\" AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M') FROM t").fetchall() == [
        ("2026-01-01 08:00",)
    ]


def test_an_invalid_date_format_is_refused(ws: Ws) -> None:
    ws.write("t.csv", "d\n01/02/2026\n")
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(date_format="%d/%m/%Q"))
    assert '`date_format: "%d/%m/%Q"` is not a valid format' in str(e.value)
    assert "Unrecognized format for strftime/strptime: %Q" in str(e.value)


def test_declared_date_and_timestamp_formats(ws: Ws) -> None:
    ws.write("t.csv", "jour,heure\n01/02/2026,01/02/2026 14h30\n03/04/2026,03/04/2026 09h05\n")
    ws.load(ws.source(date_format="%d/%m/%Y", timestamp_format="%d/%m/%Y %Hh%M"))
    assert ws.rows("t") == [
        (date(2026, 2, 1), datetime(2026, 2, 1, 14, 30)),
        (date(2026, 4, 3), datetime(2026, 4, 3, 9, 5)),
    ]


def test_null_values(ws: Ws) -> None:
    ws.write("t.csv", "a,b\n1,n/a\n2,3.5\nNA,4\n")
    ws.load(ws.source(null_values=["n/a", "NA"]))
    assert ws.types("t") == {"a": "BIGINT", "b": "DOUBLE"}
    assert ws.rows("t") == [(1, None), (2, 3.5), (None, 4.0)]


def test_without_header(ws: Ws) -> None:
    ws.write("t.csv", "1,x\n2,y\n")
    ws.load(ws.source(header=False))
    assert ws.types("t") == {"column0": "BIGINT", "column1": "VARCHAR"}
    assert ws.rows("t") == [(1, "x"), (2, "y")]


def test_quoted_fields_with_delimiters_quotes_and_newlines(ws: Ws) -> None:
    ws.write("t.csv", 'id,label\n1,"Paris, France"\n2,"say ""hi"""\n3,"two\nlines"\n')
    ws.load()
    assert ws.rows("t") == [(1, "Paris, France"), (2, 'say "hi"'), (3, "two\nlines")]


def test_a_title_line_above_the_header_is_skipped(ws: Ws) -> None:
    ws.write("t.csv", "Export du 31/01/2026\n\nid,amount\n1,2.5\n2,3.5\n")
    ws.load()
    assert ws.rows("t") == [(1, 2.5), (2, 3.5)]


def test_unknown_csv_option_is_refused(ws: Ws) -> None:
    ws.write("t.csv", "a\n1\n")
    with pytest.raises(LoadError, match=r"unknown option 'quotes' for a CSV file; did you mean 'quote'\?"):
        ws.load(ws.source(options={"quotes": "'"}))


def test_sniff_columns_applies_the_load_options(ws: Ws) -> None:
    ws.write("t.csv", "jour;montant;n;libellé\n31/01/2026;12,5;1;été\n28/02/2026;3,25;2;œuvre\n", "cp1252")
    [tf] = discover(ws.source(), ws.root)
    assert sniff_columns(tf) == {"jour": "DATE", "montant": "DOUBLE", "n": "BIGINT", "libellé": "VARCHAR"}
    assert ws.con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]


def test_declared_types_win(ws: Ws) -> None:
    ws.write("t.csv", "code,amount\n01000,5\n75001,6\n")
    ws.load(declared={"t": {"code": "varchar", "amount": "decimal(12,2)"}})
    assert ws.types("t") == {"code": "VARCHAR", "amount": "DECIMAL(12,2)"}
    assert [r[0] for r in ws.rows("t")] == ["01000", "75001"]


def test_an_unknown_declared_type_is_refused(ws: Ws) -> None:
    ws.write("t.csv", "a\n1\n")
    with pytest.raises(LoadError, match=r"unknown column type 'doubel'; did you mean 'double'\?"):
        ws.load(declared={"t": {"a": "doubel"}})


# --- bookkeeping: unchanged, touched, appended, replaced ------------------------------------------------


def _record(ws: Ws, table: str) -> dict[str, object]:
    cur = ws.con.execute("SELECT * FROM kpilot.loads WHERE table_name = ?", [table])
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def test_the_first_load_records_file_and_result(ws: Ws) -> None:
    path = ws.write("t.csv", "id,day\n1,2026-01-05\n2,2026-01-06\n")
    report = ws.load()
    [t] = report.tables
    assert (t.table, t.path, t.status, t.rows, t.version) == ("t", path, "loaded", 2, 1)
    rec = _record(ws, "t")
    st = path.stat()
    assert rec["path"] == str(path)
    assert (rec["size"], rec["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    import hashlib

    assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (rec["rows"], rec["version"], rec["change"], rec["append_min"]) == (2, 1, "replace", None)
    assert json.loads(str(rec["columns"])) == {"id": "BIGINT", "day": "DATE"}
    assert isinstance(rec["loaded_at"], datetime)


def test_an_unchanged_file_is_not_read_again(ws: Ws) -> None:
    path = ws.write("t.csv", "".join(["id,v\n"] + [f"{i},{i * 2}\n" for i in range(200_000)]))
    first = ws.load()
    st = path.stat()
    # Same size and mtime: kpilot must trust them and not even read the file. Prove it by changing the
    # bytes behind its back.
    path.write_bytes(path.read_bytes().replace(b"1", b"9"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = ws.load()
    [t] = second.tables
    assert (t.status, t.version, t.rows) == ("unchanged", 1, 200_000)
    assert first.tables[0].version == 1
    assert ws.con.execute("SELECT v FROM t WHERE id = 1").fetchall() == [(2,)]


def test_a_touched_file_with_the_same_bytes_is_unchanged_and_its_mtime_updated(ws: Ws) -> None:
    path = ws.write("t.csv", "id\n1\n")
    ws.load()
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    [t] = ws.load().tables
    assert (t.status, t.version) == ("unchanged", 1)
    assert _record(ws, "t")["mtime_ns"] == 1_700_000_000_000_000_000


def test_new_content_of_the_same_size_replaces_the_table(ws: Ws) -> None:
    path = ws.write("t.csv", "id\n1\n")
    ws.load()
    path.write_text("id\n2\n")
    os.utime(path, ns=(1, 1))
    [t] = ws.load().tables
    assert (t.status, t.version) == ("loaded", 2)
    assert ws.rows("t") == [(2,)]
    assert _record(ws, "t")["change"] == "replace"


def test_appended_lines_are_inserted_and_equal_a_full_reload(ws: Ws, tmp_path: Path) -> None:
    head = "id,day,at,amount\n1,2026-01-05,2026-01-05 10:00:00,1.5\n2,2026-01-06,2026-01-06 11:00:00,2.5\n"
    path = ws.write("t.csv", head)
    ws.load()
    with path.open("a") as f:
        f.write("3,2026-02-01,2026-02-03 08:00:00,3.5\n4,2026-01-31,2026-02-02 09:30:00,\n")
    [t] = ws.load().tables
    assert (t.status, t.rows, t.version) == ("appended", 4, 2)
    rec = _record(ws, "t")
    assert rec["change"] == "append"
    assert json.loads(str(rec["append_min"])) == {"day": "2026-01-31", "at": "2026-02-02T09:30:00"}
    import hashlib

    assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rec["size"] == path.stat().st_size
    # The same file loaded from scratch gives the same table.
    fresh = Ws(tmp_path / "fresh")
    shutil.copy(path, fresh.data / "t.csv")
    fresh.load()
    assert ws.rows("t") == fresh.rows("t")
    assert ws.types("t") == fresh.types("t")
    # Appending again keeps counting versions, and an unchanged file is then left alone.
    with path.open("a") as f:
        f.write("5,2026-03-01,2026-03-01 00:00:00,5\n")
    assert [(t.status, t.rows, t.version) for t in ws.load().tables] == [("appended", 5, 3)]
    assert [(t.status, t.version) for t in ws.load().tables] == [("unchanged", 3)]


def test_appending_to_a_windows_1252_file(ws: Ws) -> None:
    path = ws.write("t.csv", "id,nom\n1,Café\n", "cp1252")
    ws.load()
    with path.open("ab") as f:
        f.write("2,Œuvre €\n".encode("cp1252"))
    [t] = ws.load().tables
    assert (t.status, t.rows) == ("appended", 2)
    assert ws.rows("t") == [(1, "Café"), (2, "Œuvre €")]


def test_a_grown_file_whose_start_changed_is_replaced(ws: Ws) -> None:
    path = ws.write("t.csv", "id,v\n1,a\n2,b\n")
    ws.load()
    path.write_text("id,v\n1,A\n2,b\n3,c\n")
    [t] = ws.load().tables
    assert (t.status, t.rows, t.version) == ("loaded", 3, 2)
    assert ws.rows("t") == [(1, "A"), (2, "b"), (3, "c")]
    assert _record(ws, "t")["change"] == "replace"


def test_a_last_line_without_newline_that_grows_is_a_replace(ws: Ws) -> None:
    path = ws.write("t.csv", "id,v\n1,a\n2,b")
    ws.load()
    path.write_text("id,v\n1,a\n2,bc\n3,d\n")
    [t] = ws.load().tables
    assert t.status == "loaded"
    assert ws.rows("t") == [(1, "a"), (2, "bc"), (3, "d")]


def test_a_shrunk_file_is_replaced(ws: Ws) -> None:
    path = ws.write("t.csv", "id\n1\n2\n3\n4\n")
    ws.load()
    path.write_text("id\n1\n2\n")  # half the rows: kept (less would be refused, see test_files_shrink.py)
    assert [(t.status, t.rows) for t in ws.load().tables] == [("loaded", 2)]


def test_force_reloads_an_unchanged_file(ws: Ws) -> None:
    ws.write("t.csv", "id\n1\n")
    ws.load()
    assert [(t.status, t.version) for t in ws.load(force=True).tables] == [("loaded", 2)]


def test_a_new_declared_type_reloads_an_unchanged_file(ws: Ws) -> None:
    ws.write("t.csv", "code\n1000\n75001\n")
    ws.load()
    assert ws.types("t") == {"code": "BIGINT"}
    [t] = ws.load(declared={"t": {"code": "varchar"}}).tables
    assert (t.status, t.version) == ("loaded", 2)
    assert ws.rows("t") == [("1000",), ("75001",)]


def test_a_table_dropped_by_hand_is_loaded_again(ws: Ws) -> None:
    ws.write("t.csv", "id\n1\n")
    ws.load()
    ws.con.execute("DROP TABLE t")
    assert [t.status for t in ws.load().tables] == ["loaded"]
    assert ws.rows("t") == [(1,)]


def test_types_of_the_previous_load_are_kept_when_the_sample_now_looks_like_text(ws: Ws) -> None:
    path = ws.write("t.csv", "id,amount\n1,1.5\n2,2.5\n")
    ws.load()
    path.write_text("id,amount\n1,1.5\n2,abc\n3,4\n")
    with pytest.raises(LoadError) as e:
        ws.load()
    msg = str(e.value)
    assert "data/t.csv, line 3, column amount: 'abc' is not a number" in msg
    assert "the column held numbers when the table was last loaded" in msg
    assert ws.types("t")["amount"] == "DOUBLE"
    assert ws.rows("t") == [(1, 1.5), (2, 2.5)]


def test_integers_may_become_decimals(ws: Ws) -> None:
    path = ws.write("t.csv", "id,amount\n1,1\n2,2\n")
    ws.load()
    path.write_text("id,amount\n1,1\n2,2.5\n")
    ws.load()
    assert ws.types("t")["amount"] == "DOUBLE"
    assert ws.rows("t") == [(1, 1.0), (2, 2.5)]


# --- a decimal is never rounded into an integer column ----------------------------------------------------


def test_a_decimal_beyond_the_sniffed_rows_widens_the_column(ws: Ws) -> None:
    # The sniffer sees whole numbers only; DuckDB alone would read the last value as 3.
    body = "".join(f"{i},{i}\n" for i in range(30_000))
    ws.write("t.csv", "id,amount\n" + body + "30000,2.5\n")
    ws.load()
    assert ws.types("t") == {"id": "BIGINT", "amount": "DOUBLE"}
    assert ws.con.execute("SELECT amount FROM t WHERE id = 30000").fetchall() == [(2.5,)]
    assert ws.con.execute("SELECT sum(amount) FROM t").fetchall() == [(sum(range(30_000)) + 2.5,)]


def test_a_decimal_appended_to_a_column_of_whole_numbers_widens_it(ws: Ws, tmp_path: Path) -> None:
    path = ws.write("t.csv", "id,amount\n1,1\n2,2\n")
    ws.load()
    assert ws.types("t")["amount"] == "BIGINT"
    with path.open("a") as f:
        f.write("3,2.5\n")
    [t] = ws.load().tables
    assert (t.status, t.rows, t.version) == ("appended", 3, 2)
    assert ws.types("t") == {"id": "BIGINT", "amount": "DOUBLE"}
    assert ws.rows("t") == [(1, 1.0), (2, 2.0), (3, 2.5)]
    assert json.loads(str(_record(ws, "t")["columns"])) == {"id": "BIGINT", "amount": "DOUBLE"}
    fresh = Ws(tmp_path / "fresh")
    shutil.copy(path, fresh.data / "t.csv")
    fresh.load()
    assert (fresh.types("t"), fresh.rows("t")) == (ws.types("t"), ws.rows("t"))


def test_whole_numbers_stay_integers_and_exact_beyond_2_pow_53(ws: Ws) -> None:
    # Integer columns are read as DOUBLE to see fractions; numbers a DOUBLE can't hold are read again exactly.
    ws.write("t.csv", "id,n\n9007199254740993,1\n-9223372036854775808,2\n3,\n")
    ws.load()
    assert ws.types("t") == {"id": "BIGINT", "n": "BIGINT"}
    assert ws.rows("t") == [(-9223372036854775808, 2), (3, None), (9007199254740993, 1)]


def test_a_fraction_on_a_number_beyond_2_pow_53_is_seen(ws: Ws) -> None:
    ws.write("t.csv", "id,n\n1,9007199254740993\n2,9007199254740993.5\n")
    with pytest.raises(LoadError) as e:
        ws.load(declared={"t": {"n": "bigint"}})
    assert "data/t.csv, line 3, column n: '9007199254740993.5' is not a whole number" in str(e.value)


# --- a file that changes while it is read --------------------------------------------------------------


def test_a_file_that_grows_while_it_is_read_is_not_loaded(ws: Ws, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ws.write("t.csv", "id,v\n1,a\n2,b\n")
    ws.load()
    before = ws.loads()
    with path.open("a") as f:
        f.write("3,c\n")
    real = files_module.plan_csv

    def plan_then_grow(*args: Any, **kwargs: Any) -> Any:
        # Another program writes a line after the file was compared and before its new lines are read:
        # recorded with the size seen before, that line would be appended again by the next load.
        out = real(*args, **kwargs)
        with path.open("a") as f:
            f.write("4,d\n")
        return out

    monkeypatch.setattr(files_module, "plan_csv", plan_then_grow)
    with pytest.raises(LoadError) as e:
        ws.load()
    assert str(e.value) == ("data/t.csv changed while it was being loaded; run the load again (once the program "
                            "writing it has finished).\nNothing was loaded: every table keeps its previous data.")
    assert ws.loads() == before
    assert ws.rows("t") == [(1, "a"), (2, "b")]
    monkeypatch.setattr(files_module, "plan_csv", real)
    [t] = ws.load().tables
    assert (t.status, t.rows) == ("appended", 4)
    assert ws.rows("t") == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
    assert [t.status for t in ws.load().tables] == ["unchanged"]


# --- a first load of a header alone ---------------------------------------------------------------------


def test_lines_added_under_a_lone_header_are_typed_as_in_a_fresh_load(ws: Ws) -> None:
    path = ws.write("t.csv", "id,amount,day\n")
    [t] = ws.load().tables
    assert (t.rows, ws.types("t")) == (0, {"id": "VARCHAR", "amount": "VARCHAR", "day": "VARCHAR"})
    with path.open("a") as f:
        f.write("1,2.5,2026-01-05\n2,3,2026-01-06\n")
    [t] = ws.load().tables
    assert (t.status, t.rows, t.version) == ("loaded", 2, 2)
    assert ws.types("t") == {"id": "BIGINT", "amount": "DOUBLE", "day": "DATE"}
    assert ws.rows("t") == [(1, 2.5, date(2026, 1, 5)), (2, 3.0, date(2026, 1, 6))]


def test_versions_and_columns_for_the_other_layers(ws: Ws) -> None:
    assert table_versions(ws.con) == {}
    assert loaded_columns(ws.con) == {}
    ws.write("a.csv", "x\n1\n")
    ws.write("b.csv", "y,z\nq,2026-01-01\n")
    ws.load()
    (ws.data / "a.csv").write_text("x\n1\n2\n3\n")
    ws.load()
    assert table_versions(ws.con) == {"a": 2, "b": 1}
    assert loaded_columns(ws.con) == {"a": {"x": "BIGINT"}, "b": {"y": "VARCHAR", "z": "DATE"}}


def test_progress_is_reported_per_file(ws: Ws) -> None:
    ws.write("a.csv", "x\n1\n")
    ws.write("b.csv", "x\n1\n")
    seen: list[tuple[str, int, int]] = []
    load_tables(ws.con, discover(ws.source(), ws.root), on_progress=lambda t, d, n: seen.append((t, d, n)))
    assert seen == [("a", 1, 2), ("b", 2, 2)]


def test_two_files_for_one_table_are_refused(ws: Ws) -> None:
    ws.write("a.csv", "x\n1\n")
    [tf] = discover(ws.source(), ws.root)
    with pytest.raises(LoadError, match=r"table .a. would be loaded from both data/a\.csv and data/a\.csv"):
        load_tables(ws.con, [tf, tf])


# --- all or nothing --------------------------------------------------------------------------------


def test_a_failing_file_leaves_every_table_and_the_bookkeeping_as_they_were(ws: Ws) -> None:
    ws.write("accounts.csv", "id,name\n1,Acme\n2,Globex\n")
    ws.write("deals.csv", "id,amount\n10,100.5\n11,200.25\n")
    ws.load()
    before = ws.loads()
    # accounts changes for real (so it would be replaced first), deals gets a broken line.
    ws.write("accounts.csv", "id,name\n1,ACME SA\n2,Globex\n3,Initech\n")
    ws.write("deals.csv", "id,amount\n10,100.5\n11,200.25\n12,300,7\n")
    with pytest.raises(LoadError) as e:
        ws.load()
    assert "data/deals.csv, line 4: 3 field(s) where the header has 2" in str(e.value)
    assert "Nothing was loaded" in str(e.value)
    assert ws.rows("accounts") == [(1, "Acme"), (2, "Globex")]
    assert ws.rows("deals") == [(10, 100.5), (11, 200.25)]
    assert ws.loads() == before
    # Once fixed, both load together.
    ws.write("deals.csv", "id,amount\n10,100.5\n11,200.25\n12,300.7\n")
    assert sorted((t.table, t.version) for t in ws.load().tables) == [("accounts", 2), ("deals", 2)]
    assert ws.rows("accounts") == [(1, "ACME SA"), (2, "Globex"), (3, "Initech")]


def test_the_first_load_failing_leaves_no_table_and_no_bookkeeping(ws: Ws) -> None:
    ws.write("a.csv", "x\n1\n")
    ws.write("b.csv", "x,y\n1,2\n3\n")
    with pytest.raises(LoadError):
        ws.load()
    assert ws.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name IN ('main', 'kpilot')"
                          ).fetchall() == [(0,)]
