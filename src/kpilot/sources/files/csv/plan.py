"""The plan of a CSV read: everything one read_csv call needs, with no detection left."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpilot.model.types import INTEGER_TYPES
from kpilot.sources.files.common import ColumnSpec, TableFile
from kpilot.sources.files.csv.encoding import Encoding

# Integer columns are read as DOUBLE (see read.read_into); those whose numbers a DOUBLE may round, as this.
_EXACT_TYPE = "DECIMAL(38,18)"


@dataclass
class CsvPlan:
    """Everything needed to read one CSV file with one read_csv call and no detection left."""

    tf: TableFile
    read_path: Path
    encoding: Encoding
    options: dict[str, Any]
    columns: dict[str, ColumnSpec]
    header_line: int  # the line holding the header (1-based), 0 without a header
    line_offset: int = 0  # lines of the file before `read_path`'s first data line, for appends
    notes: dict[str, str] = field(default_factory=dict)  # where dateformat etc. came from

    def read_types(self, exact: Collection[str] = ()) -> dict[str, str]:
        """The type each column is read with: DuckDB rounds 2.5 to 3 in an integer column, so integer columns
        are read as DOUBLE (or DECIMAL(38,18) for those in `exact`) and given their type back by read_into."""
        return {k: (_EXACT_TYPE if k in exact else "DOUBLE") if c.type in INTEGER_TYPES else c.type
                for k, c in self.columns.items()}

    def read_sql(self, extra: Mapping[str, Any] | None = None, *,
                 types: Mapping[str, str] | None = None) -> tuple[str, list[Any]]:
        """`read_csv(...)` with every option fixed, as SQL text with parameters."""
        opts: dict[str, Any] = {**self.options, "columns": dict(types) if types is not None else self.read_types()}
        opts.update(extra or {})
        # Option names are constants of this module; values are always bound parameters.
        sql = "read_csv(?, auto_detect=false, strict_mode=true, " + ", ".join(f"{k}=?" for k in opts) + ")"
        return sql, [str(self.read_path), *opts.values()]
