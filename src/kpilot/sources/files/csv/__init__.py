"""CSV files, for the loader: the encoding (encoding.py) and dialect (dialect.py) worked out into the plan of one
read_csv call (plan.py), the typed read (read.py), and DuckDB's errors turned into kpilot's (errors.py)."""

from kpilot.sources.files.csv.dialect import plan_append, plan_csv
from kpilot.sources.files.csv.encoding import EncodingRetry
from kpilot.sources.files.csv.errors import diagnose
from kpilot.sources.files.csv.plan import CsvPlan
from kpilot.sources.files.csv.read import read_into

__all__ = ["CsvPlan", "EncodingRetry", "diagnose", "plan_append", "plan_csv", "read_into"]
