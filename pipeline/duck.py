"""DuckDB connections set up the same way for every step: UTC, bounded memory, spill to disk."""

from __future__ import annotations

import tempfile

import duckdb

from pipeline.config import Settings


def connect(settings: Settings, spill_dir: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit}'")
    con.execute(f"SET temp_directory = '{spill_dir or tempfile.gettempdir()}'")
    if settings.duckdb_threads:
        con.execute(f"SET threads = {int(settings.duckdb_threads)}")
    return con
