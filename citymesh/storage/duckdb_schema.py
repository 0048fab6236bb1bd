"""Tables of the DuckDB store and the migration from the first layout.

Writes append to `ingest`, where the row with the highest `seq` wins for a
(series, timestamp). Since schema version 3 `ingest` is a view of an
in-memory table backed by a log (see duckdb_staging.py), and older files
have it as a table of their own, which the store migrates on open.
Compaction moves ingest rows into `points`, which contains
one row per (series, timestamp) sorted by series and time, so DuckDB's
column compression sees long runs of one series. The tables have no primary
key on purpose, because a DuckDB index costs tens of bytes per row on disk
and slows appends. Uniqueness in `points` and `rollups` is kept by the store.
"""

from __future__ import annotations

import logging

import duckdb

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    tenant VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    gateway VARCHAR NOT NULL,
    device VARCHAR NOT NULL,
    quantity VARCHAR NOT NULL,
    unit VARCHAR NOT NULL,
    step_s INTEGER NOT NULL,
    tags VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS rollups (
    series_id INTEGER NOT NULL,
    step_s INTEGER NOT NULL,
    ts BIGINT NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS rollup_done (
    series_id INTEGER NOT NULL,
    step_s INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    series_id INTEGER PRIMARY KEY,
    ts BIGINT NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
"""

_POINTS = """
CREATE TABLE IF NOT EXISTS points (
    series_id INTEGER NOT NULL,
    ts BIGINT NOT NULL,
    value DOUBLE NOT NULL
);
"""


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables and migrate a store written by the first layout."""
    con.execute(SCHEMA)
    has_points = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'points'"
    ).fetchall()[0]
    version = con.execute(
        "SELECT value FROM state WHERE key = 'schema.version'"
    ).fetchall()
    if has_points[0] and not version:
        # The first layout had PRIMARY KEY (series_id, ts) on points, and DuckDB
        # cannot drop a key, so the table is copied without it.
        logger.info("migrating the points table to schema version %s", SCHEMA_VERSION)
        con.execute("BEGIN TRANSACTION")
        con.execute("ALTER TABLE points RENAME TO points_v1")
        con.execute(_POINTS)
        con.execute(
            "INSERT INTO points SELECT series_id, ts, value FROM points_v1"
            " ORDER BY series_id, ts"
        )
        con.execute("DROP TABLE points_v1")
        con.execute("COMMIT")
    con.execute(_POINTS)
    con.execute(
        "INSERT INTO state VALUES ('schema.version', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION],
    )
