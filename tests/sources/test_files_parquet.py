"""Parquet sources: read as they are, declared types applied, broken files explained."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kpilot.sources.files import LoadError, discover, sniff_columns
from tests.sources.helpers import Ws


def write(path: Path, **columns: list[object]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_a_folder_of_parquet_files(ws: Ws) -> None:
    write(ws.data / "deals.parquet", id=["D1", "D2"], amount=[1.5, 2.5], day=[date(2026, 1, 1), date(2026, 1, 2)])
    write(ws.data / "accounts.parquet", id=[1, 2], name=["Acme", "Globex"])
    report = ws.load(ws.source(type="parquet"))
    assert sorted((t.table, t.rows, t.status) for t in report.tables) == [
        ("accounts", 2, "loaded"), ("deals", 2, "loaded"),
    ]
    assert ws.types("deals") == {"id": "VARCHAR", "amount": "DOUBLE", "day": "DATE"}
    assert ws.rows("deals") == [("D1", 1.5, date(2026, 1, 1)), ("D2", 2.5, date(2026, 1, 2))]
    assert {t.status for t in ws.load(ws.source(type="parquet")).tables} == {"unchanged"}


def test_sniff_columns_reads_the_schema(ws: Ws) -> None:
    write(ws.data / "t.parquet", id=[1], name=["a"])
    [tf] = discover(ws.source(type="parquet"), ws.root)
    assert sniff_columns(tf) == {"id": "BIGINT", "name": "VARCHAR"}


def test_declared_types_are_cast(ws: Ws) -> None:
    write(ws.data / "t.parquet", id=[1, 2], amount=["1.5", "2"])
    ws.load(ws.source(type="parquet"), declared={"t": {"amount": "double", "id": "varchar"}})
    assert ws.types("t") == {"id": "VARCHAR", "amount": "DOUBLE"}
    assert ws.rows("t") == [("1", 1.5), ("2", 2.0)]


def test_a_value_a_declared_type_cannot_hold(ws: Ws) -> None:
    write(ws.data / "t.parquet", id=[1], amount=["1.5"])
    ws.load(ws.source(type="parquet"))
    write(ws.data / "t.parquet", id=[1, 2, 3], amount=["1.5", "2", "abc"])
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="parquet"), declared={"t": {"amount": "double"}})
    msg = str(e.value)
    assert "data/t.parquet, column amount, row 3: 'abc' can't be read as double" in msg
    assert "Nothing was loaded" in msg
    assert ws.rows("t") == [(1, "1.5")]


def test_a_file_that_is_not_parquet(ws: Ws) -> None:
    write(ws.data / "good.parquet", x=[1])
    ws.load(ws.source(type="parquet"))
    ws.write("t.parquet", "id,name\n1,a\n")
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="parquet"))
    msg = str(e.value)
    assert "data/t.parquet could not be read as Parquet" in msg
    assert "export the file again as Parquet" in msg
    assert ws.rows("good") == [(1,)]


def test_a_missing_required_column(ws: Ws) -> None:
    write(ws.data / "t.parquet", id=[1], amount_eur=[2.0])
    with pytest.raises(LoadError) as e:
        ws.load(ws.source(type="parquet"), required={"t": {"amount": "measure of metric revenue"}})
    assert ("data/t.parquet has no column 'amount', needed as measure of metric revenue; did you mean "
            "'amount_eur'?") in str(e.value)


def test_a_declared_integer_type_never_rounds_a_fraction(ws: Ws) -> None:
    write(ws.data / "t.parquet", id=["1", "2"], n=[1.0, 2.0], amount=[1.0, 2.5])
    ws.load(ws.source(type="parquet"), declared={"t": {"id": "bigint", "n": "bigint"}})
    assert ws.types("t") == {"id": "BIGINT", "n": "BIGINT", "amount": "DOUBLE"}
    assert ws.rows("t") == [(1, 1, 1.0), (2, 2, 2.5)]
    for column, values in (("amount", [1.0, 2.5]), ("id", ["1", "2.5"])):
        write(ws.data / "t.parquet", **{"n": [1.0, 2.0], column: values})
        with pytest.raises(LoadError) as e:
            ws.load(ws.source(type="parquet"), declared={"t": {column: "bigint"}})
        assert str(e.value).startswith(f"data/t.parquet, column {column}, row 2: '2.5' can't be read as bigint, the "
                                       f"type the model declares for {column}.")
        assert ws.rows("t") == [(1, 1, 1.0), (2, 2, 2.5)]
