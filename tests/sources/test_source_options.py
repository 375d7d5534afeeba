"""Options of file sources and declared column types are checked with the workspace, at their kpilot.yaml line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpilot.model import WorkspaceInvalid, load_workspace, parse_workspace, validate

WORKSPACE = """\
workspace: w
sources:
  - key: files
    type: csv
    path: data/
    delimiter: ";;"
    decimal: ","
    date_format: "31/12/2026"
    timestamp_format: "%d/%m/%Y %Q"
    options:
      skip: two
      quote: "''"
      escape: "\\\\"
      quotes: "'"
  - key: sheets
    type: excel
    path: book.xlsx
    options: {header_row: 3}
  - key: tabs
    type: csv
    path: tabs/
    delimiter: tab
    decimal: ","
    options: {skip: 2, comment: "#"}
  - key: same
    type: csv
    path: same/
    delimiter: ","
    decimal: ","
models:
  - key: deals
    table: deals
    columns: {amount: doubel, id: bigint, code: varchar, price: "decimal(12,2)"}
"""


def test_every_unusable_option_is_reported_at_its_line() -> None:
    ws, smap = parse_workspace(WORKSPACE, "kpilot.yaml")
    issues = validate(ws, smap)
    assert all(i.severity == "error" for i in issues)
    assert sorted(f"{i.location}: {i.path}: {i.message}" for i in issues) == [
        "kpilot.yaml:11:13: sources[0].options.skip: `skip: two` is not a number of lines",
        "kpilot.yaml:12:14: sources[0].options.quote: `quote` must be one ASCII character, not \"''\"",
        "kpilot.yaml:14:7: sources[0].options.quotes: unknown option 'quotes' for a CSV file; did you mean 'quote'? "
        "options: 'quote', 'escape', 'comment', 'skip'",
        "kpilot.yaml:18:15: sources[1].options.header_row: a source of type excel reads no `options:`, so "
        "'header_row' would be ignored",
        "kpilot.yaml:29:14: sources[3].decimal: `decimal: \",\"` is also the `delimiter:`, so a value like 1,5 "
        "could not be told from two fields",
        "kpilot.yaml:33:23: models[0].columns.amount: unknown column type 'doubel' for column amount; did you mean "
        "'double'? types: 'bigint', 'bool', 'boolean', 'date', 'datetime', 'double', 'float', 'float64', 'int', "
        "'int64', 'integer', 'long', 'number', 'numeric', 'real', 'str', 'string', 'text', 'time', 'timestamp', "
        "'timestamptz', 'varchar', decimal(p,s)",
        "kpilot.yaml:6:16: sources[0].delimiter: `delimiter` must be one character, not \";;\"",
        "kpilot.yaml:8:18: sources[0].date_format: `date_format: \"31/12/2026\"` is not a valid format: it has no % "
        "code, so it cannot tell where the day, month or year is",
        "kpilot.yaml:9:23: sources[0].timestamp_format: `timestamp_format: \"%d/%m/%Y %Q\"` is not a valid format: "
        "'%Q' is not a strftime code",
    ]
    fixes = {i.path: str(i.fix) for i in issues}
    assert fixes["sources[0].options.quote"] == "write one character, e.g. `quote: \"'\"`"
    assert fixes["sources[0].delimiter"] == "write one character, e.g. `delimiter: \";\"`, or `tab`"


def test_a_workspace_with_an_unusable_option_does_not_open(tmp_path: Path) -> None:
    # What `kpilot load` meets first: a message at the line, not a traceback from the CSV reader.
    text = "workspace: w\nsources:\n  - key: files\n    type: csv\n    path: data/\n    options: {skip: two}\n"
    (tmp_path / "kpilot.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(WorkspaceInvalid) as e:
        load_workspace(tmp_path)
    [issue] = e.value.issues
    assert str(issue).startswith(f"{tmp_path / 'kpilot.yaml'}:6:")
    assert "`skip: two` is not a number of lines" in str(issue)
