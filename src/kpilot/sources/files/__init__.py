"""File sources (CSV, Excel, Parquet): find a source's files and load them into the warehouse, all or nothing.

load.py finds a source's files and loads them (Parquet files directly); csv.py and excel.py read the other kinds;
state.py keeps what was loaded from which file, and the latest load that failed; common.py holds what they share.
"""

from kpilot.sources.files.common import LoadError, TableFile, table_name
from kpilot.sources.files.load import LoadReport, TableLoad, discover, load_tables, nothing_to_load, sniff_columns
from kpilot.sources.files.state import LoadFailure, clear_failures, last_failure, record_failure

__all__ = [
    "LoadError", "LoadFailure", "LoadReport", "TableFile", "TableLoad", "clear_failures", "discover", "last_failure",
    "load_tables", "nothing_to_load", "record_failure", "sniff_columns", "table_name",
]
