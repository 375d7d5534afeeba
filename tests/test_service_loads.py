"""The service's loads: a refused file keeps the last good data, reads go on with it, the failure is kept."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from kpilot.service import WorkspaceService
from kpilot.sources.files import LoadError

ORDERS = "id,ordered_at,amount\n1,2026-01-05,10\n2,2026-02-06,20\n3,2026-02-07,30\n"
EMPTIED = ("data/orders.csv holds no rows now; loading it would empty table 'orders', which holds 3 row(s). "
           "Fix: check the export that wrote the file (was it cut short, or filtered?); if the table is meant to be "
           "empty, run `kpilot load --allow-shrink`.\nNothing was loaded: every table keeps its previous data.")


def _workspace(root: Path) -> Path:
    ws = root / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "orders.csv").write_text(ORDERS, encoding="utf-8")
    doc = {"workspace": "shop", "sources": [{"key": "files", "type": "csv", "path": "data/"}],
           "models": [{"key": "orders", "table": "orders", "source": "files", "time": "ordered_at"}],
           "metrics": [{"key": "revenue", "model": "orders", "measure": "sum(amount)", "grain": "month"}]}
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return ws


def _values(svc: WorkspaceService) -> dict[object, object]:
    return {r["period"]: r["value"] for r in svc.series("revenue", as_of=date(2026, 2, 28))}


def test_reads_go_on_with_the_last_good_data_and_name_the_failure(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        assert svc.last_load_failure() is None
        assert not (tmp_path / "state").exists()  # asking creates no warehouse
        assert [t.rows for t in svc.load(strict=True).tables] == [3]
        assert svc.last_load_failure() is None
        (ws / "data" / "orders.csv").write_text("id,ordered_at,amount\n", encoding="utf-8")

        started = datetime.now(UTC)
        with pytest.raises(LoadError) as e:
            svc.load(strict=True)
        assert str(e.value) == EMPTIED
        failure = svc.last_load_failure()
        assert failure is not None
        assert (str(failure.message), failure.source) == (EMPTIED, None)
        assert started <= failure.failed_at <= datetime.now(UTC)

        # A read's own load is refused the same way, and the read answers from the last good data.
        report = svc.load()
        assert report.tables == [] and report.failure is not None
        assert str(report.failure.message) == EMPTIED
        assert _values(svc) == {"2026-01-01": 10.0, "2026-02-01": 50.0}

        [t] = svc.load(allow_shrink=True, strict=True).tables
        assert (t.status, t.rows) == ("loaded", 0)
        assert svc.last_load_failure() is None


def test_a_file_put_back_as_it_was_clears_the_failure(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    path = ws / "data" / "orders.csv"
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        svc.load()
        kept = path.read_bytes(), path.stat().st_mtime_ns
        path.write_text("id,ordered_at,amount\n", encoding="utf-8")
        assert svc.load().failure is not None
        path.write_bytes(kept[0])
        assert [t.status for t in svc.load().tables] == ["unchanged"]
        assert svc.last_load_failure() is None


def test_without_last_good_data_the_failure_is_raised(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    (ws / "data" / "orders.csv").write_text("id,ordered_at,amount\n1,2026-01-05,10,4\n", encoding="utf-8")
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        with pytest.raises(LoadError, match="line 2: 4 field"):
            svc.load()
        assert svc.last_load_failure() is not None  # kept for the pages all the same
