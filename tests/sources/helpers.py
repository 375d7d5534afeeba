"""A throwaway workspace for source tests: a folder with data files and a real DuckDB database file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from kpilot.model.workspace import Source
from kpilot.sources.files import LoadReport, discover, load_tables


class Ws:
    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True)
        self.con = duckdb.connect(str(root / "warehouse.duckdb"))

    def write(self, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        path = self.data / name
        path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
        return path

    def source(self, type: str = "csv", path: str = "data/", **fields: Any) -> Source:
        return Source.model_validate({"key": "files", "type": type, "path": path, **fields})

    def load(self, source: Source | None = None, *, required: Mapping[str, Mapping[str, str]] | None = None,
             declared: Mapping[str, Mapping[str, str]] | None = None, force: bool = False) -> LoadReport:
        files = discover(source or self.source(), self.root)
        return load_tables(self.con, files, required=required, declared=declared, force=force)

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        return self.con.execute(f'SELECT * FROM main."{table}" ORDER BY ALL').fetchall()

    def types(self, table: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self.con.execute(f'DESCRIBE main."{table}"').fetchall()}

    def loads(self) -> list[tuple[Any, ...]]:
        return self.con.execute("SELECT * FROM kpilot.loads ORDER BY table_name").fetchall()
