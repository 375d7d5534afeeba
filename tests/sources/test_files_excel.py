"""Excel sources: one table per sheet, per-column types, and errors that cite the sheet and the cell."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from kpilot.sources.files import LoadError, discover, sniff_columns
from tests.sources.helpers import Ws


def workbook(path: Path, sheets: dict[str, list[list[Any]]], *, first_row: int = 1, first_col: int = 1) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    ws.cell(row=first_row + r, column=first_col + c, value=value)
    wb.save(path)
    return path


BUDGET: list[list[Any]] = [
    ["month", "team", "amount", "headcount", "approved", "signed_at", "start"],
    [date(2026, 1, 1), "Sales", 1200.5, 3, True, datetime(2026, 1, 3, 9, 30), time(9, 0)],
    [date(2026, 2, 1), "Marketing", 800, 2, False, datetime(2026, 2, 4, 14, 0), time(8, 30)],
    [date(2026, 3, 1), "Sales", 950.25, 4, True, None, None],
]


def test_one_table_per_sheet_with_inferred_types(ws: Ws) -> None:
    workbook(ws.data / "budget.xlsx", {"Budget 2026": BUDGET, "Équipes": [["team", "lead"], ["Sales", "Ana"]]})
    report = ws.load(ws.source(type="excel"))
    assert sorted((t.table, t.rows) for t in report.tables) == [("budget_2026", 3), ("equipes", 1)]
    assert ws.types("budget_2026") == {
        "month": "DATE", "team": "VARCHAR", "amount": "DOUBLE", "headcount": "BIGINT", "approved": "BOOLEAN",
        "signed_at": "TIMESTAMP", "start": "TIME",
    }
    assert ws.rows("budget_2026") == [
        (date(2026, 1, 1), "Sales", 1200.5, 3, True, datetime(2026, 1, 3, 9, 30), time(9, 0)),
        (date(2026, 2, 1), "Marketing", 800.0, 2, False, datetime(2026, 2, 4, 14, 0), time(8, 30)),
        (date(2026, 3, 1), "Sales", 950.25, 4, True, None, None),
    ]
    assert ws.rows("equipes") == [("Sales", "Ana")]


def test_the_header_is_the_first_non_empty_row_and_unused_columns_are_dropped(ws: Ws) -> None:
    workbook(ws.data / "t.xlsx", {"Data": [["id", "label"], [1, "a"], [None, None], [2, "b"]]}, first_row=4, first_col=2)
    ws.load(ws.source(type="excel"))
    assert ws.types("data") == {"id": "BIGINT", "label": "VARCHAR"}
    assert ws.rows("data") == [(1, "a"), (2, "b")]


def test_a_sheet_option_and_a_tables_mapping(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"Notes": [["free text"], ["anything", 1, "x"]], "Budget": BUDGET})
    [tf] = discover(ws.source(type="excel", path="data/b.xlsx", sheet="Budget"), ws.root)
    assert (tf.table, tf.sheet) == ("budget", "Budget")
    mapped = discover(ws.source(type="excel", path="data/b.xlsx", tables={"plan": "Budget"}), ws.root)
    assert [(t.table, t.sheet) for t in mapped] == [("plan", "Budget")]
    ws.load(ws.source(type="excel", path="data/b.xlsx", tables={"plan": "Budget"}))
    assert len(ws.rows("plan")) == 3
    with pytest.raises(LoadError) as e:
        discover(ws.source(type="excel", path="data/b.xlsx", sheet="budget "), ws.root)
    assert "data/b.xlsx has no sheet 'budget '; did you mean 'Budget'? sheets: 'Notes', 'Budget'" in str(e.value)


def test_a_folder_of_workbooks_with_one_sheet_each(ws: Ws) -> None:
    workbook(ws.data / "jan.xlsx", {"Data": [["n"], [1]]})
    workbook(ws.data / "feb.xlsx", {"Data": [["n"], [2]]})
    with pytest.raises(LoadError, match=r"table .data. would come from both data/feb\.xlsx \(sheet Data\) and data/jan"):
        discover(ws.source(type="excel"), ws.root)
    ws.load(ws.source(type="excel", sheet="Data"))
    assert ws.rows("jan") == [(1,)]
    assert ws.rows("feb") == [(2,)]


def test_a_text_cell_in_a_numeric_column_is_an_error_citing_the_cell(ws: Ws) -> None:
    rows = [["month", "amount"]] + [[date(2026, 1, 1), 10.5 * i] for i in range(1, 56)]
    path = workbook(ws.data / "budget.xlsx", {"Budget": rows}, first_col=2)
    ws.load(ws.source(type="excel"))
    before = ws.rows("budget")
    workbook(path, {"Budget": [*rows, [date(2026, 3, 1), "n/a"], [date(2026, 4, 1), 7.5]]}, first_col=2)
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="excel"))
    msg = str(e.value)
    assert "data/budget.xlsx, sheet Budget, cell C57: 'n/a' in column amount, which holds numbers." in msg
    assert "add it to the source's `null_values`" in msg
    assert "`columns: {amount: varchar}`" in msg
    assert msg.endswith("Nothing was loaded: every table keeps its previous data.")
    assert ws.rows("budget") == before


def test_null_values_and_numbers_typed_as_text(ws: Ws) -> None:
    # Three real numbers against two numbers typed as text: the column holds numbers.
    workbook(ws.data / "b.xlsx", {"B": [["amount"], [10], ["n/a"], ["12,5"], [" 1 234,5 "], [3.5], [7]]})
    ws.load(ws.source(type="excel", null_values=["n/a"]))
    assert ws.rows("b") == [(3.5,), (7.0,), (10.0,), (12.5,), (1234.5,), (None,)]


def test_a_text_date_in_a_date_column(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"B": [["day"], [date(2026, 1, 1)], [date(2026, 1, 2)], [date(2026, 1, 4)], ["2026-01-03"],
                                         ["soon"]]})
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="excel"))
    assert "data/b.xlsx, sheet B, cell A6: 'soon' in column day, which holds dates." in str(e.value)
    workbook(ws.data / "b.xlsx", {"B": [["day"], [date(2026, 1, 1)], [date(2026, 1, 2)], ["03/01/2026"]]})
    ws.load(ws.source(type="excel", date_format="%d/%m/%Y"))
    assert ws.rows("b") == [(date(2026, 1, 1),), (date(2026, 1, 2),), (date(2026, 1, 3),)]


def test_an_excel_error_value_is_explained(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"B": [["ratio"], [0.5], [0.25], ["#DIV/0!"]]})
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="excel"))
    assert "cell A4: '#DIV/0!' in column ratio, which holds numbers." in str(e.value)
    assert "the cell holds an Excel error: correct its formula" in str(e.value)


def test_declared_types_for_codes_and_decimals(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"B": [["zip", "price"], [75001, 10], ["2A004", 2.5], [1000, 3]]})
    with pytest.raises(LoadError, match="cell A3: '2A004' in column zip, which holds whole numbers"):
        ws.load(ws.source(type="excel"))
    ws.load(ws.source(type="excel"), declared={"b": {"zip": "varchar", "price": "decimal(10,2)"}})
    assert ws.types("b") == {"zip": "VARCHAR", "price": "DECIMAL(10,2)"}
    assert ws.rows("b") == [("1000", Decimal("3.00")), ("2A004", Decimal("2.50")), ("75001", Decimal("10.00"))]


def test_a_mostly_text_column_stays_text(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"B": [["note"], ["ok"], ["late"], [42], [True]]})
    ws.load(ws.source(type="excel"))
    assert ws.rows("b") == [("42",), ("late",), ("ok",), ("true",)]


def test_a_duplicate_header(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"B": [["id", "name", "ID"], [1, "a", 2]]})
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="excel"))
    assert "data/b.xlsx, sheet B, cells A1 and C1: column 'ID' appears twice in the header row" in str(e.value)


def test_a_file_that_is_not_a_workbook(ws: Ws) -> None:
    ws.write("b.xlsx", "id,name\n1,a\n")
    with pytest.raises(LoadError) as e:
        discover(ws.source(type="excel"), ws.root)
    assert "data/b.xlsx is not an Excel .xlsx workbook kpilot can open" in str(e.value)
    assert "save it as .xlsx" in str(e.value)


def test_without_header(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"B": [[1, "a"], [2, "b"]]})
    ws.load(ws.source(type="excel", header=False))
    assert ws.types("b") == {"column0": "BIGINT", "column1": "VARCHAR"}


def test_sniff_columns_of_a_sheet(ws: Ws) -> None:
    workbook(ws.data / "budget.xlsx", {"Budget": BUDGET})
    [tf] = discover(ws.source(type="excel"), ws.root)
    assert sniff_columns(tf) == {
        "month": "DATE", "team": "VARCHAR", "amount": "DOUBLE", "headcount": "BIGINT", "approved": "BOOLEAN",
        "signed_at": "TIMESTAMP", "start": "TIME",
    }


def test_an_unchanged_workbook_is_not_read_again(ws: Ws) -> None:
    path = workbook(ws.data / "budget.xlsx", {"Budget": BUDGET, "Other": [["x"], [1]]})
    ws.load(ws.source(type="excel"))
    assert {t.status for t in ws.load(ws.source(type="excel")).tables} == {"unchanged"}
    workbook(path, {"Budget": BUDGET[:3], "Other": [["x"], [1]]})
    report = ws.load(ws.source(type="excel"))
    assert sorted((t.table, t.status, t.rows, t.version) for t in report.tables) == [
        ("budget", "loaded", 2, 2), ("other", "loaded", 1, 2),
    ]


def test_empty_sheets_are_skipped_when_every_sheet_is_read(ws: Ws) -> None:
    # Excel's untouched "Sheet1" beside the data: it must not block the load of the other sheets.
    workbook(ws.data / "b.xlsx", {"Sheet1": [], "Budget": BUDGET, "Blank": [["  ", None], [None, ""]]})
    report = ws.load(ws.source(type="excel"))
    assert [(t.table, t.rows) for t in report.tables] == [("budget", 3)]
    assert [t.table for t in discover(ws.source(type="excel", path="data/b.xlsx"), ws.root)] == ["budget"]


def test_a_named_empty_sheet_is_a_clear_error(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"Sheet1": [], "Budget": BUDGET})
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="excel", path="data/b.xlsx", sheet="Sheet1"))
    assert str(e.value).startswith("data/b.xlsx, sheet Sheet1: the sheet is empty (no header row, no data). Fix: name "
                                   "a sheet that holds the data in `sheet:` or `tables:` of source 'files'")
    assert "Invalid Input Error" not in str(e.value)


def test_a_workbook_with_only_empty_sheets(ws: Ws) -> None:
    workbook(ws.data / "b.xlsx", {"Sheet1": [], "Sheet2": []})
    with pytest.raises(LoadError) as e:
        discover(ws.source(type="excel"), ws.root)
    assert str(e.value).startswith("data/b.xlsx: every sheet is empty.")


def test_a_declared_decimal_type_never_rounds_a_cell(ws: Ws) -> None:
    path = workbook(ws.data / "b.xlsx", {"B": [["id", "amount"], [1, 1.1 * 3], [2, 1200.5]]})
    ws.load(ws.source(type="excel"), declared={"b": {"amount": "decimal(12,2)"}})
    assert ws.rows("b") == [(1, Decimal("3.30")), (2, Decimal("1200.50"))]  # 3.3000000000000003 is Excel's 3.3
    workbook(path, {"B": [["id", "amount"], [1, 3.3], [2, 2.555]]})
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="excel"), declared={"b": {"amount": "decimal(12,2)"}})
    assert str(e.value).startswith(
        "data/b.xlsx, sheet B, cell B3: '2.555' in column amount, which the model declares as decimal(12,2).\nFix: "
        "type a number in the cell or leave it empty; decimal(12,2) holds 2 decimal(s) and 10 digit(s) before the "
        "point: round the value, or declare a wider type in the model's `columns:`.")
    assert ws.rows("b") == [(1, Decimal("3.30")), (2, Decimal("1200.50"))]
