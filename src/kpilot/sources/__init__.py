"""Sources: getting rows into the warehouse. Sources fetch; they never run the analysis.

files/ loads CSV, Excel and Parquet files; databases/ copies (or computes in place) the tables of SQL databases;
saas/ copies the objects of SaaS APIs; push.py materializes the rows other systems push. Databases and SaaS APIs
are connectors behind one interface (base.py), copied by sync.py with their state and cursors in the warehouse;
registry.py says which connector reads a source, and secrets.py where its credentials come from.
"""
