"""One chunk of the DuckDB store's background work: compact, backfill, expire."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from citymesh.errors import StorageError
from citymesh.storage.duckdb_rollup import backfill_rollup, expire

if TYPE_CHECKING:
    from citymesh.storage.duckdb_store import DuckDBStore

logger = logging.getLogger(__name__)

# Series whose rollups are backfilled per chunk after a rule change.
BACKFILL_SERIES = 2000


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    """What one maintenance chunk did, and whether more work is waiting."""

    compacted: int
    backfilled: int
    expired: int
    more: bool


def run_maintenance(
    store: DuckDBStore,
    con: duckdb.DuckDBPyConnection,
    lock: threading.Lock,
    now_ms: int,
    max_rows: int,
    with_expiry: bool,
) -> MaintenanceResult:
    """Compact up to max_rows ingest rows, backfill a chunk of rollups, then expire.

    Expiry waits until the ingest table and the backfill are done, so raw
    points are deleted only after every rollup of their rule holds them.
    """
    compacted = store.compact(max_rows)
    if compacted >= max_rows:
        return MaintenanceResult(compacted, 0, 0, more=True)
    backfilled, pending = _backfill(store, con, lock)
    if pending:
        return MaintenanceResult(compacted, backfilled, 0, more=True)
    expired = 0
    if with_expiry:
        expired = _expire(store, con, lock, now_ms)
    return MaintenanceResult(compacted, backfilled, expired, more=False)


def _stored_steps(con: duckdb.DuckDBPyConnection) -> set[int]:
    rows = con.execute("SELECT DISTINCT step_s FROM rollups").fetchall()
    return {int(row[0]) for row in rows}


def _backfill(
    store: DuckDBStore, con: duckdb.DuckDBPyConnection, lock: threading.Lock
) -> tuple[int, bool]:
    """Backfill one chunk of rollups; return rows written and whether more wait."""
    with lock:
        work = store.catalog.missing_rollups(BACKFILL_SERIES)
        if not work:
            return 0, False
        written = 0
        con.execute("BEGIN TRANSACTION")
        try:
            stored = _stored_steps(con)
            for policy, step_s, series_ids in work:
                written += backfill_rollup(con, policy, step_s, series_ids, stored)
                store.catalog.mark_done(series_ids, step_s)
                stored.add(step_s)
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            store.catalog.reload()
            raise StorageError(f"rollup backfill failed: {exc}") from exc
    logger.info(
        "backfilled %d rollup rows for %d series and step groups", written, len(work)
    )
    return written, True


def _expire(
    store: DuckDBStore,
    con: duckdb.DuckDBPyConnection,
    lock: threading.Lock,
    now_ms: int,
) -> int:
    with lock:
        raw, rollups = store.catalog.expiry_plan(now_ms, _stored_steps(con))
        if not raw and not rollups:
            return 0
        con.execute("BEGIN TRANSACTION")
        try:
            deleted = expire(con, raw, rollups)
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise StorageError(f"expiry failed: {exc}") from exc
    if deleted:
        logger.info("expired %d points and rollup rows", deleted)
    return deleted
