"""Excel workbooks (.xlsx): one sheet -> one typed Arrow table, with errors that cite the sheet and cell."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from kpilot.model.errors import Message, joined, msg, verbatim
from kpilot.sources.files.common import (
    ColumnSpec,
    LoadError,
    TableFile,
    a_value_of,
    holds,
    no_sheet,
    null_value_hint,
    plan_types,
    shown_path,
    text_column_hint,
    where,
)

_EXCEL_ERRORS = ("#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!", "#SPILL!", "#CALC!")
_TRUE = ("true", "yes", "oui", "vrai", "1")
_FALSE = ("false", "no", "non", "faux", "0")
_NUMBER = re.compile(r"^[+-]?(\d+|\d{1,3}([ \u00a0\u202f]\d{3})+)([.,]\d+)?([eE][+-]?\d+)?$")


@contextmanager
def _workbook(path: Path, shown: str) -> Iterator[Any]:
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as e:
        hint = (msg(" Excel 97-2003 .xls files are not supported: save it as .xlsx.")
                if path.suffix.lower() == ".xls" else verbatim(""))
        raise LoadError(msg("{path} is not an Excel .xlsx workbook kpilot can open ({reason}).{hint} Fix: open it in "
                            "Excel or LibreOffice and save it as .xlsx (not password-protected).", path=shown,
                            reason=f"{type(e).__name__}: {e}", hint=hint)) from None
    try:
        yield wb
    finally:
        wb.close()


def sheet_names(path: Path, shown: str) -> list[str]:
    """Names of the workbook's worksheets, in order."""
    with _workbook(path, shown) as wb:
        return list(wb.sheetnames)


def _blank(row: tuple[Any, ...]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def data_sheet_names(path: Path, shown: str, source: str) -> list[str]:
    """Names of the worksheets that hold at least one non-blank row (a header), in order."""
    with _workbook(path, shown) as wb:
        names = [name for name in wb.sheetnames
                 if any(not _blank(row) for row in wb[name].iter_rows(values_only=True))]
    if not names:
        raise LoadError(msg("{path}: every sheet is empty. Fix: put the data in the workbook (a header row, then one "
                            "row per record), or remove it from the folder of source '{source}'.", path=shown,
                            source=source))
    return names


@dataclass
class _Column:
    name: str
    letter: str
    cells: list[tuple[int, Any]]  # (row number, value) of the non-empty cells


def _cell_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, datetime | date):
        return "temporal"
    if isinstance(v, time):
        return "time"
    return "text"


def _detect(cells: list[tuple[int, Any]]) -> str:
    """The type most cells have; a tie or no cells means text."""
    counts: dict[str, int] = {}
    for _, v in cells:
        k = _cell_kind(v)
        counts[k] = counts.get(k, 0) + 1
    if not counts:
        return "VARCHAR"
    best = max(counts, key=lambda k: counts[k])
    if sum(c == counts[best] for c in counts.values()) > 1 or best == "text":
        return "VARCHAR"
    if best == "number":
        return "BIGINT" if all(isinstance(v, int) for _, v in cells if _cell_kind(v) == "number") else "DOUBLE"
    if best == "temporal":
        midnight = all(not isinstance(v, datetime) or v.time() == time(0) for _, v in cells
                       if _cell_kind(v) == "temporal")
        return "DATE" if midnight else "TIMESTAMP"
    return {"bool": "BOOLEAN", "time": "TIME"}[best]


def _rows(tf: TableFile, limit: int | None) -> tuple[list[_Column], list[int]]:
    """Columns of the sheet with their non-empty cells, and the row numbers of the data rows."""
    null = {s.strip() for s in (tf.source.null_values or [])}
    with _workbook(tf.path, shown_path(tf)) as wb:
        if tf.sheet not in wb.sheetnames:
            names = list(wb.sheetnames)
            raise no_sheet(shown_path(tf), tf.sheet or "", names, tf.source.key)
        ws = wb[tf.sheet]
        header: list[Any] | None = None
        header_row = 0
        data: list[tuple[int, tuple[Any, ...]]] = []
        for r, raw in enumerate(ws.iter_rows(values_only=True), start=1):
            if _blank(raw):
                continue  # blank rows are layout, not data
            row = tuple(None if isinstance(v, str) and (not v.strip() or v.strip() in null) else v for v in raw)
            if header is None and tf.source.header:
                header, header_row = list(row), r
                continue
            data.append((r, row))
            if limit is not None and len(data) >= limit:
                break
    if header is None and not data:
        raise LoadError(msg("{where}: the sheet is empty (no header row, no data). Fix: name a sheet that holds the "
                            "data in `sheet:` or `tables:` of source '{source}', or fill this one.", where=where(tf),
                            source=tf.source.key))
    width = max([len(header or [])] + [len(row) for _, row in data])
    columns: list[_Column] = []
    for j in range(width):
        cells = [(r, row[j]) for r, row in data if j < len(row) and row[j] is not None]
        title = header[j] if header is not None and j < len(header) else None
        if title is None and not cells:
            continue  # an unused column (formatting only)
        name = _header_text(title) if title is not None else f"column{j}"
        columns.append(_Column(name, get_column_letter(j + 1), cells))
    seen: dict[str, _Column] = {}
    for col in columns:
        other = seen.get(col.name.lower())
        if other is not None:
            raise LoadError(msg("{where}, cells {first} and {second}: column '{name}' appears twice in the header "
                                "row. Fix: rename one of them.", where=where(tf), first=f"{other.letter}{header_row}",
                                second=f"{col.letter}{header_row}", name=col.name))
        seen[col.name.lower()] = col
    return columns, [r for r, _ in data]


def _header_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime | date):
        return v.isoformat()
    return str(v).strip()


def sniff_sheet(tf: TableFile, rows: int = 1000) -> dict[str, str]:
    """Column types of a sheet from its first rows."""
    columns, _ = _rows(tf, rows)
    return {c.name: _detect(c.cells) for c in columns}


def read_sheet(
    tf: TableFile,
    *,
    previous: Mapping[str, str] | None = None,
    declared: Mapping[str, str] | None = None,
) -> tuple[pa.Table, dict[str, ColumnSpec]]:
    """The whole sheet as an Arrow table; a cell that disagrees with its column's type is a LoadError."""
    columns, rows = _rows(tf, None)
    # Declared types come from the model's names, previous ones from a previous load of a workbook: both
    # are types _converter knows.
    specs = plan_types({c.name: _detect(c.cells) for c in columns}, previous, declared, where(tf))
    n_rows = len(rows)
    index = {r: i for i, r in enumerate(rows)}
    arrays = []
    for c in columns:
        spec = specs[c.name]
        convert = _converter(spec.type, tf)
        values: list[Any] = [None] * n_rows
        for r, v in c.cells:
            try:
                values[index[r]] = convert(v)
            except (ValueError, TypeError, InvalidOperation):
                raise LoadError(_cell_message(tf, c, r, v, spec)) from None
        arrays.append(pa.array(values, type=_arrow_type(spec.type)))
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns]), specs


def _cell_message(tf: TableFile, col: _Column, row: int, value: Any, spec: ColumnSpec) -> Message:
    t = spec.type
    why = {
        "declared": msg("which the model declares as {type}", type=t.lower()),
        "previous": msg("which held {holds} when the table was last loaded", holds=holds(t)),
    }.get(spec.origin, msg("which holds {holds}", holds=holds(t)))
    shown = value.isoformat() if isinstance(value, date | time) else value
    head = msg("{where}: '{value}' in column {column}, {why}.", where=where(tf, cell=f"{col.letter}{row}"),
               value=str(shown), column=col.name, why=why)
    if isinstance(value, str) and value.strip() in _EXCEL_ERRORS:
        return msg("{head}\nFix: the cell holds an Excel error: correct its formula, or clear the cell.", head=head)
    fix = [msg("type {a_value} in the cell or leave it empty", a_value=a_value_of(t))]
    if isinstance(value, str):
        fix.append(null_value_hint(value))
    if spec.origin != "declared":
        fix.append(text_column_hint(col.name))
    if t.startswith("DECIMAL") and not isinstance(value, str):
        precision, scale = _precision_scale(t)
        fix.append(msg("{type} holds {scale} decimal(s) and {digits} digit(s) before the point: round the value, or "
                       "declare a wider type in the model's `columns:`", type=t.lower(), scale=scale,
                       digits=precision - scale))
    if t in ("DATE", "TIMESTAMP") and isinstance(value, str):
        fix.append(msg("dates typed as text must look like 2026-12-31 (or match the source's `date_format`)"))
    return msg("{head}\nFix: {fix}.", head=head, fix=joined(msg("; "), fix))


def _precision_scale(t: str) -> tuple[int, int]:
    """(12, 2) for DECIMAL(12,2)."""
    p, s = (int(x) for x in t[8:-1].split(","))
    return p, s


def _decimal_converter(t: str) -> Callable[[Any], Decimal]:
    """Numbers for a DECIMAL(p,s) column: one with more decimals or digits than the type holds is refused,
    not rounded (Arrow would refuse it too, with its own words)."""
    precision, scale = _precision_scale(t)

    def convert(v: Any) -> Decimal:
        n = _number(v)
        # A cell holds a binary float: 15 significant digits are what Excel shows of it (3.3, not 3.3000000000000003).
        d = Decimal(f"{n:.15g}" if isinstance(n, float) else str(n))
        exponent = d.as_tuple().exponent
        too_precise = isinstance(exponent, int) and -exponent > scale
        if too_precise or (d != 0 and d.adjusted() >= precision - scale):
            raise ValueError(v)
        return d

    return convert


def _arrow_type(t: str) -> pa.DataType:
    if t.startswith("DECIMAL"):
        return pa.decimal128(*_precision_scale(t))
    return {
        "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "VARCHAR": pa.string(), "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"), "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
        "BOOLEAN": pa.bool_(), "TIME": pa.time64("us"),
    }[t]


def _number(v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ValueError(v)
    if isinstance(v, str):
        s = v.strip()
        if not _NUMBER.match(s):
            raise ValueError(v)
        s = re.sub(r"[ \u00a0\u202f]", "", s).replace(",", ".")
        return float(s) if any(ch in s for ch in ".eE") else int(s)
    return v


def _to_int(v: Any) -> int:
    n = _number(v)
    if isinstance(n, float):
        if not n.is_integer():
            raise ValueError(v)
        return int(n)
    return n


def _to_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date | time):
        return v.isoformat()
    return str(v)


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    key = str(v).strip().lower() if isinstance(v, str | int) else None
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(v)


def _parse_text_date(v: str, fmt: str | None) -> datetime:
    s = v.strip()
    return datetime.strptime(s, fmt) if fmt else datetime.fromisoformat(s)


def _converter(t: str, tf: TableFile) -> Callable[[Any], Any]:
    src = tf.source

    def to_datetime(v: Any) -> datetime:
        if isinstance(v, datetime):
            return v
        if isinstance(v, date):
            return datetime(v.year, v.month, v.day)
        if isinstance(v, str):
            return _parse_text_date(v, src.timestamp_format or src.date_format)
        raise ValueError(v)

    def to_date(v: Any) -> date:
        if isinstance(v, datetime):
            return v.date()
        if isinstance(v, date):
            return v
        if isinstance(v, str):
            return _parse_text_date(v, src.date_format).date()
        raise ValueError(v)

    def to_time(v: Any) -> time:
        if isinstance(v, time):
            return v
        if isinstance(v, str):
            return time.fromisoformat(v.strip())
        raise ValueError(v)

    if t.startswith("DECIMAL"):
        return _decimal_converter(t)
    return {
        "BIGINT": _to_int, "DOUBLE": lambda v: float(_number(v)), "VARCHAR": _to_text, "DATE": to_date,
        "TIMESTAMP": to_datetime, "TIMESTAMP WITH TIME ZONE": to_datetime, "BOOLEAN": _to_bool, "TIME": to_time,
    }[t]
