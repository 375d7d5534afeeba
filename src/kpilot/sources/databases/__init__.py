"""SQL databases (PostgreSQL, MySQL/MariaDB, SQLite, DuckDB files): their tables copied into the warehouse, or
computed where they live (`mode: in_place`).

connectors.py discovers the tables and reads them in batches for the sync (kpilot.sources.sync); in_place.py
opens the databases whose tables are computed in place, for compute's engines.
"""
