"""Broken CSV files: each error names the file, line, column and value, says how to fix it, and loses nothing."""

from __future__ import annotations

import tempfile

import pytest

from kpilot.sources.files import LoadError, discover, load_tables
from tests.sources.helpers import Ws

GOOD_DEALS = "deal_id,created_at,amount_eur,stage\nD1,2026-01-05 10:00:00,100.5,won\nD2,2026-01-06 11:30:00,200,lost\n"
GOOD_ROWS = [("D1", "2026-01-05 10:00:00", 100.5, "won"), ("D2", "2026-01-06 11:30:00", 200.0, "lost")]


@pytest.fixture
def loaded(ws: Ws) -> Ws:
    """A workspace whose deals and accounts tables were loaded once, cleanly."""
    ws.write("deals.csv", GOOD_DEALS)
    ws.write("accounts.csv", "id,name\n1,Acme\n")
    ws.load()
    return ws


def fail(ws: Ws, **kw: object) -> str:
    """Load, expect a LoadError, check nothing changed, and return the message."""
    before = ws.loads()
    with pytest.raises(LoadError) as e:
        ws.load(**kw)  # type: ignore[arg-type]
    msg = str(e.value)
    assert ws.loads() == before
    deals = ws.con.execute("SELECT deal_id, strftime(created_at, '%Y-%m-%d %H:%M:%S'), amount_eur, stage "
                           "FROM deals ORDER BY deal_id").fetchall()
    assert deals == GOOD_ROWS
    assert ws.rows("accounts") == [(1, "Acme")]
    # People read this text: DuckDB's own dumps and Python internals must not leak into it.
    for leak in ("Possible fixes", "Traceback", "sniff_csv", "strict_mode", "Conversion Error", "Invalid Input Error",
                 "auto_detect"):
        assert leak not in msg
    assert msg.endswith("Nothing was loaded: every table keeps its previous data.")
    return msg


def test_a_row_with_too_many_fields(loaded: Ws) -> None:
    loaded.write("deals.csv", GOOD_DEALS + "D3,2026-01-07 09:00:00,1,500.5,won\n")
    msg = fail(loaded)
    assert "data/deals.csv, line 4: 5 field(s) where the header has 4 (delimiter ',')." in msg
    assert "4 | D3,2026-01-07 09:00:00,1,500.5,won" in msg
    assert 'put the value that contains it between double quotes, e.g. "Paris, France"' in msg


def test_a_row_with_missing_fields(loaded: Ws) -> None:
    loaded.write("deals.csv", GOOD_DEALS + "D3,2026-01-07 09:00:00\n")
    msg = fail(loaded)
    assert "data/deals.csv, line 4: 2 field(s) where the header has 4" in msg
    assert "add the missing values" in msg


def test_a_ragged_row_far_down_a_big_file(loaded: Ws) -> None:
    rows = "".join(f"D{i},2026-01-05 10:00:00,{i}.5,won\n" for i in range(10, 60_010))
    loaded.write("deals.csv", GOOD_DEALS + rows + "D99,2026-01-05 10:00:00,7,won,extra\n")
    msg = fail(loaded)
    assert "data/deals.csv, line 60004: 5 field(s) where the header has 4" in msg


def test_an_unterminated_quote(loaded: Ws) -> None:
    loaded.write("deals.csv", GOOD_DEALS + 'D3,2026-01-07 09:00:00,5,"won\nD4,2026-01-08 09:00:00,6,lost\n')
    msg = fail(loaded)
    assert "data/deals.csv, line 4, column stage: a quoted value is not closed properly" in msg
    assert 'a double quote inside a quoted value is written twice ("")' in msg


def test_text_in_a_numeric_column_beyond_the_sample(loaded: Ws) -> None:
    rows = "".join(f"D{i},2026-01-05 10:00:00,{i}.5,won\n" for i in range(10, 30_010))
    loaded.write("deals.csv", GOOD_DEALS + rows + "D99,2026-01-05 10:00:00,abc,won\n")
    msg = fail(loaded)
    assert "data/deals.csv, line 30004, column amount_eur: 'abc' is not a number" in msg
    assert "30004 | D99,2026-01-05 10:00:00,abc,won" in msg
    assert "add it to the source's `null_values`" in msg
    assert "`columns: {amount_eur: varchar}`" in msg


def test_text_in_a_numeric_column_inside_the_sample_is_not_silently_made_text(loaded: Ws) -> None:
    # DuckDB's sniffer alone would read the column as VARCHAR; the previous load says it holds numbers.
    loaded.write("deals.csv", GOOD_DEALS + "D3,2026-01-07 09:00:00,abc,won\n")
    msg = fail(loaded)
    assert "data/deals.csv, line 4, column amount_eur: 'abc' is not a number" in msg
    assert "the column held numbers when the table was last loaded" in msg


def test_text_in_a_declared_numeric_column(ws: Ws) -> None:
    ws.write("deals.csv", GOOD_DEALS)
    ws.write("accounts.csv", "id,name\n1,Acme\n")
    ws.load(declared={"deals": {"amount_eur": "double"}})
    ws.write("deals.csv", GOOD_DEALS + "D3,2026-01-07 09:00:00,n.c.,won\n")
    msg = fail(ws, declared={"deals": {"amount_eur": "double"}})
    assert "line 4, column amount_eur: 'n.c.' is not a number (the model declares amount_eur as double)" in msg
    assert "varchar" not in msg  # the model's own declaration is not second-guessed


def test_a_decimal_comma_in_a_dot_file_gets_a_hint(loaded: Ws) -> None:
    loaded.write("deals.csv", GOOD_DEALS + 'D3,2026-01-07 09:00:00,"12,5",won\n')
    msg = fail(loaded)
    assert "line 4, column amount_eur: '12,5' is not a number" in msg
    assert 'set `decimal: ","` on the source' in msg


def test_a_bad_timestamp(loaded: Ws) -> None:
    loaded.write("deals.csv", GOOD_DEALS + "D3,yesterday,5,won\n")
    msg = fail(loaded)
    assert "line 4, column created_at: 'yesterday' is not a date and time" in msg
    assert "`timestamp_format:" in msg


def test_a_date_that_does_not_match_the_declared_format(ws: Ws) -> None:
    ws.write("deals.csv", GOOD_DEALS)
    ws.write("accounts.csv", "id,name\n1,Acme\n")
    ws.write("orders.csv", "id,day\n1,31/01/2026\n")
    ws.load(ws.source(date_format="%d/%m/%Y"))
    ws.write("orders.csv", "id,day\n1,31/01/2026\n2,2026-02-01\n3,01/02/2026\n")
    msg = fail(ws, source=ws.source(date_format="%d/%m/%Y"))
    assert "data/orders.csv, line 3, column day: '2026-02-01' is not a date in the format %d/%m/%Y" in msg
    assert "the source's `date_format`" in msg
    assert "e.g. 31/12/2026" in msg
    assert ws.rows("orders") == [(1, __import__("datetime").date(2026, 1, 31))]


def test_a_missing_required_column_with_a_suggestion(loaded: Ws) -> None:
    loaded.write("deals.csv", GOOD_DEALS.replace("amount_eur", "amount_euro"))
    msg = fail(loaded, required={"deals": {"amount_eur": "measure of metric pipeline_generated"},
                                 "accounts": {"name": "dimension of model accounts"}})
    assert ("data/deals.csv has no column 'amount_eur', needed as measure of metric pipeline_generated; "
            "did you mean 'amount_euro'? columns found: 'deal_id', 'created_at', 'amount_euro', 'stage'.") in msg
    assert "rename the column in the file's header" in msg


def test_every_missing_column_is_listed_at_once(loaded: Ws) -> None:
    msg = fail(loaded, required={"deals": {"amount": "measure of metric a", "owner": "dimension of model deals"}})
    assert "no column 'amount', needed as measure of metric a" in msg
    assert "no column 'owner', needed as dimension of model deals" in msg


def test_a_missing_column_of_an_unchanged_file_is_still_reported(loaded: Ws) -> None:
    msg = fail(loaded, required={"accounts": {"segment": "dimension of model accounts"}})
    assert "data/accounts.csv has no column 'segment'" in msg


def test_an_empty_file(loaded: Ws) -> None:
    loaded.write("deals.csv", "")
    msg = fail(loaded)
    assert "data/deals.csv is empty (0 bytes)" in msg
    assert "needs at least a header line" in msg


def test_a_blank_file(loaded: Ws) -> None:
    loaded.write("deals.csv", "\n\n  \n")
    assert "data/deals.csv holds only blank lines" in fail(loaded)


def test_a_byte_that_is_not_utf8_when_utf8_is_declared(loaded: Ws) -> None:
    loaded.write("deals.csv", (GOOD_DEALS + "D3,2026-01-07 09:00:00,5,gagné\n").encode("cp1252"))
    msg = fail(loaded, source=loaded.source(encoding="utf-8"))
    assert "data/deals.csv, line 4: byte 0xE9 is not valid UTF-8, but the source declares encoding utf-8" in msg
    assert "4 | D3,2026-01-07 09:00:00,5,gagn\\xe9" in msg
    assert "`encoding: cp1252`" in msg


def test_a_file_deleted_between_listing_and_loading(loaded: Ws) -> None:
    files = discover(loaded.source(), loaded.root)
    (loaded.data / "deals.csv").unlink()
    before = loaded.loads()
    with pytest.raises(LoadError) as e:
        load_tables(loaded.con, files)
    assert "data/deals.csv not found" in str(e.value)
    assert loaded.loads() == before
    assert loaded.rows("accounts") == [(1, "Acme")]


def test_a_duplicate_column_name(loaded: Ws) -> None:
    loaded.write("deals.csv", "deal_id,created_at,amount_eur,stage,Amount_EUR\nD1,2026-01-05 10:00:00,1,won,2\n")
    msg = fail(loaded)
    assert "data/deals.csv, line 1: column 'Amount_EUR' appears twice in the header (fields 3 and 5)" in msg
    assert "rename one of them" in msg


def test_line_numbers_count_lines_of_multiline_values(loaded: Ws) -> None:
    loaded.write("deals.csv", GOOD_DEALS + 'D3,2026-01-07 09:00:00,5,"won\nafter a\nlong talk"\n'
                 "D4,2026-01-07 09:00:00,x,won\n")
    msg = fail(loaded)
    assert "data/deals.csv, line 7, column amount_eur: 'x' is not a number" in msg


def test_a_bad_value_in_appended_lines_gives_the_line_in_the_whole_file(loaded: Ws) -> None:
    with (loaded.data / "deals.csv").open("a") as f:
        f.write("D3,2026-01-07 09:00:00,3,won\nD4,2026-01-07 09:00:00,four,won\n")
    msg = fail(loaded)
    assert "data/deals.csv, line 5, column amount_eur: 'four' is not a number" in msg


def test_a_binary_file(loaded: Ws) -> None:
    loaded.write("deals.csv", bytes(range(256)) * 40)
    msg = fail(loaded)
    assert msg.startswith("data/deals.csv")
    assert msg.startswith("data/deals.csv does not look like CSV text: 1120 of its first 10240 bytes are control "
                          "characters")
    assert "not a workbook, an archive or an image with a .csv name" in msg
    # Windows-1252 files are read through a transcoded copy in a temporary folder: never shown.
    assert tempfile.gettempdir() not in msg and "kpilot-load" not in msg and "utf8.csv" not in msg
    assert "sniffing" not in msg


def test_a_nul_byte_in_the_header(loaded: Ws) -> None:
    loaded.write("deals.csv", GOOD_DEALS.replace("amount_eur", "amount\x00eur"))
    msg = fail(loaded)
    assert msg.startswith("data/deals.csv, line 1: field 3 of the header holds a NUL byte (0x00), which is not text: "
                          "'amount\\x00eur'.")


def test_a_decimal_in_a_column_declared_as_integer(ws: Ws) -> None:
    ws.write("deals.csv", GOOD_DEALS)
    ws.write("accounts.csv", "id,name\n1,Acme\n")
    ws.load(declared={"accounts": {"id": "bigint"}})
    ws.write("accounts.csv", "id,name\n1,Acme\n2.5,Globex\n")
    msg = fail(ws, declared={"accounts": {"id": "bigint"}})
    assert msg.startswith("data/accounts.csv, line 3, column id: '2.5' is not a whole number (the model declares id as "
                          "bigint).\n  3 | 2.5,Globex\nFix: correct the value or leave the field empty.")


def test_a_decimal_appended_to_a_column_declared_as_integer(ws: Ws) -> None:
    # The line is counted in the whole file: multi-line values and blank lines included.
    path = ws.write("accounts.csv", 'id,name\n1,Acme\n2,"Globex\nInc."\n')
    ws.load(declared={"accounts": {"id": "int"}})
    before = ws.loads()
    with path.open("a") as f:
        f.write("3,Initech\n\n4,Umbrella\n 4.5 ,Hooli\n")
    with pytest.raises(LoadError) as e:
        ws.load(declared={"accounts": {"id": "int"}})
    assert str(e.value).startswith("data/accounts.csv, line 8, column id: '4.5' is not a whole number (the model "
                                   "declares id as bigint).\n  8 |  4.5 ,Hooli\n")
    assert ws.loads() == before
    assert ws.types("accounts")["id"] == "BIGINT"
    assert ws.rows("accounts") == [(1, "Acme"), (2, "Globex\nInc.")]


def test_a_folder_in_place_of_a_listed_file(loaded: Ws) -> None:
    files = discover(loaded.source(), loaded.root)
    (loaded.data / "deals.csv").unlink()
    (loaded.data / "deals.csv").mkdir()
    with pytest.raises(LoadError) as e:
        load_tables(loaded.con, files)
    assert str(e.value).startswith("data/deals.csv is not a file any more (a folder or a device has its name).")
    assert loaded.rows("accounts") == [(1, "Acme")]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"options": {"skip": "two"}}, "source 'files': `skip: two` is not a number of lines. Fix: give the number of "
                                   "lines above the header, e.g. `skip: 2`."),
    ({"options": {"quote": "''"}}, "source 'files': `quote` must be one ASCII character, not \"''\"."),
    ({"options": {"escape": True}}, "source 'files': `escape` must be one ASCII character, not \"True\"."),
    ({"delimiter": ";;"}, "source 'files': `delimiter` must be one character, not \";;\"."),
    ({"date_format": "31/12/2026"}, 'source \'files\': `date_format: "31/12/2026"` is not a valid format (it has no % '
                                    "code, so it cannot tell where the day, month or year is)."),
])
def test_unusable_options_are_load_errors(loaded: Ws, fields: dict[str, object], expected: str) -> None:
    loaded.write("deals.csv", GOOD_DEALS.replace("D2", "D3"))  # changed, so that it is read again
    before = loaded.loads()
    with pytest.raises(LoadError) as e:
        loaded.load(loaded.source(**fields))
    assert str(e.value).startswith(expected)
    assert loaded.loads() == before


def test_a_nul_byte_in_a_time_column_of_a_first_load_is_named_at_its_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A stray NUL byte makes the sniffer read the whole time column as text: the load names the line, it does
    not blame the definition ("column is VARCHAR, not a date")."""
    from kpilot.service import WorkspaceService

    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "kpilot.yaml").write_text(
        "workspace: shop\nsources: [{key: files, type: csv, path: data/}]\n"
        "models: [{key: orders, table: orders, time: ordered_at}]\n"
        "metrics: [{key: revenue, model: orders, measure: sum(amount), grain: month}]\n", encoding="utf-8")
    rows = ["id,ordered_at,amount", *[f"{i},2026-01-{1 + i % 27:02d},{i}" for i in range(30)]]
    rows[12] = "12,2026-01-1\x003,12"
    (ws / "data" / "orders.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc, pytest.raises(LoadError) as e:
        svc.load()
    assert str(e.value).startswith("data/orders.csv, line 13, column ordered_at: ")
    assert "not a date and time" in str(e.value)
