"""Query execution: DuckDB (the only importer of duckdb) and the statement executors."""
