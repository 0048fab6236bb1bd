"""Embedded time-series store on DuckDB: one file, no server."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt

from citymesh.errors import StorageError
from citymesh.storage.base import (
    BucketSpec,
    BucketValues,
    LatestValue,
    PointsBlock,
    SeriesData,
    SeriesMeta,
)
from citymesh.storage.duckdb_buckets import read_buckets
from citymesh.storage.duckdb_rollup import compact_ingest
from citymesh.storage.duckdb_schema import create_schema
from citymesh.storage.duckdb_series import SeriesCatalog
from citymesh.storage.duckdb_staging import IngestStaging
from citymesh.storage.maintenance import MaintenanceResult, run_maintenance
from citymesh.storage.patterns import compile_glob, has_glob, literal_prefix
from citymesh.storage.retention import RetentionRules

logger = logging.getLogger(__name__)

# Rows moved from ingest to points per compaction step. Writers wait for the
# lock during a step, which took about 0.1 s in bench/carbon_ingest.py.
COMPACT_MAX_ROWS = 500_000
# Block size of a new database file; an existing file keeps its own. With
# DuckDB's default of 256 KiB, a value segment of about 150 KB often fills a
# block alone and leaves about 100 KB unused. The 12,096,000 points of the
# full W2 load of bench/run.py, inserted 500,000 at a time, took 3.2 bytes
# per point in a fresh file with 256 KiB blocks and 2.1 with 64 KiB ones
# (DuckDB 2.0.1).
# NOTE: only DuckDB 2.0.1 was tried; older releases may not open such a file.
FILE_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "default_block_size": str(64 * 1024)
}
# Staged rows past which an append compacts before it returns, so memory use
# stays bounded when writes outpace the background compaction.
STAGING_MAX_ROWS = 4_000_000


class DuckDBStore:
    """A TimeSeriesStore in one DuckDB database file, or in memory when path is None.

    One process owns the file. Writes are serialised by a lock; reads use a
    cursor per thread and see the last committed write. Writes append to an
    in-memory ingest table made durable by a log in `<file>.ingest/` (see
    duckdb_staging.py), and `maintain` (run in the background by the server)
    compacts it, computes rollups and expires data per the retention rules.
    """

    def __init__(self, path: Path | None, rules: RetentionRules | None = None) -> None:
        self.path = path
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._con = (
                duckdb.connect(str(path), config=FILE_CONFIG)
                if path is not None
                else duckdb.connect(":memory:")
            )
        except duckdb.IOException as exc:
            raise StorageError(
                f"cannot open the DuckDB store at {path}: {exc}. Another citymesh "
                "server may be using it; stop it or choose another data directory"
            ) from exc
        create_schema(self._con)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self.catalog = SeriesCatalog(self._con, rules or RetentionRules())
        try:
            self._staging = IngestStaging(self._con, path)
        except duckdb.Error as exc:
            raise StorageError(
                f"restoring the uncompacted rows of {path} failed: {exc}"
            ) from exc
        logger.info(
            "DuckDB store open at %s with %d series",
            path or ":memory:",
            len(self.catalog),
        )

    @property
    def rules(self) -> RetentionRules:
        """The retention rules the store applies."""
        return self.catalog.rules

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            self._local.cursor = cursor
            with self._write_lock:
                self._cursors.append(cursor)
        return cursor

    def _ingest_pending(self) -> bool:
        # Every staged row has a seq above the compacted one, so reads skip
        # the ingest table while it is empty.
        return self._staging.pending_rows() > 0

    def register(self, metas: Sequence[SeriesMeta]) -> npt.NDArray[np.int32]:
        """Return the store's id of each series, registering new ones."""
        with self._write_lock:
            return self._register(metas)

    def _register(self, metas: Sequence[SeriesMeta]) -> npt.NDArray[np.int32]:
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            ids = self.catalog.register(metas)
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            self.catalog.reload()
            raise StorageError(
                f"registering {len(metas)} series failed: {exc}"
            ) from exc
        return ids

    def write(self, blocks: Sequence[PointsBlock]) -> int:
        """Store all blocks in one transaction; return the points newly added.

        The last value written for a (series, timestamp) wins. A point that
        only replaces a stored one is not counted as added.
        """
        blocks = [b for b in blocks if b.timestamps.size]
        if not blocks:
            return 0
        with self._write_lock:
            ids = self._register([b.series for b in blocks])
            sids = np.concatenate(
                [
                    np.full(b.timestamps.size, i, np.int32)
                    for b, i in zip(blocks, ids.tolist(), strict=True)
                ]
            )
            stamps = np.concatenate([b.timestamps.astype(np.int64) for b in blocks])
            values = np.concatenate([b.values.astype(np.float64) for b in blocks])
            return self._append(sids, stamps, values, count_new=True)

    def append(
        self,
        series_ids: npt.NDArray[np.int32],
        timestamps: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> int:
        """Append points as columns in one transaction; return how many.

        The last value written for a (series, timestamp) wins, also within
        one call. The count includes points that replace stored ones.
        """
        if not series_ids.size == timestamps.size == values.size:
            raise ValueError(
                f"append got {series_ids.size} ids, {timestamps.size} timestamps "
                f"and {values.size} values; the three must be equally long"
            )
        if not series_ids.size:
            return 0
        with self._write_lock:
            added = self._append(series_ids, timestamps, values, count_new=False)
        while self._staging.pending_rows() > STAGING_MAX_ROWS and self.compact():
            pass
        return added

    def _append(
        self,
        sids: npt.NDArray[np.int32],
        stamps: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        count_new: bool,
    ) -> int:
        con = self._con
        sids = sids.astype(np.int32, copy=False)
        stamps = stamps.astype(np.int64, copy=False)
        values = values.astype(np.float64, copy=False)
        added = sids.size
        con.execute("BEGIN TRANSACTION")
        try:
            if count_new:
                con.register("citymesh_batch", {"series_id": sids, "ts": stamps})
                added = self._count_new(con, int(stamps.min()), int(stamps.max()))
                con.unregister("citymesh_batch")
            self._staging.append(sids, stamps, values)
            con.execute("COMMIT")
        except (duckdb.Error, StorageError) as exc:
            con.execute("ROLLBACK")
            raise StorageError(f"write of {sids.size} points failed: {exc}") from exc
        return int(added)

    @staticmethod
    def _count_new(con: duckdb.DuckDBPyConnection, low: int, high: int) -> int:
        """Count distinct (series, ts) of the registered batch not stored yet."""
        row = con.execute(
            """
            SELECT count(*) FROM (SELECT DISTINCT series_id, ts FROM citymesh_batch) b
            WHERE NOT EXISTS (
                SELECT 1 FROM points p WHERE p.ts BETWEEN $low AND $high
                AND p.series_id = b.series_id AND p.ts = b.ts)
            AND NOT EXISTS (
                SELECT 1 FROM ingest i WHERE i.ts BETWEEN $low AND $high
                AND i.series_id = b.series_id AND i.ts = b.ts)
            """,
            {"low": low, "high": high},
        ).fetchall()[0]
        return int(row[0]) if row else 0

    def resolution_for(
        self, name: str, start_ms: int, now_ms: int | None = None
    ) -> int:
        """Return the finest archive of a series still covering start_ms (0: raw)."""
        archives = self.rules.policy(name).archives
        if not archives:
            return 0
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        for index, archive in enumerate(archives):
            if now - archive.retention_s * 1000 <= start_ms:
                return 0 if index == 0 else archive.step_s
        return archives[-1].step_s if len(archives) > 1 else 0

    def read(
        self,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        resolution_s: int | None = 0,
    ) -> list[SeriesData]:
        """Return the points of each known named series with start <= t < end.

        `resolution_s` 0 reads raw points, a step reads that rollup, and None
        picks per series the finest archive covering start_ms.
        """
        known = self.catalog.lookup(names)
        if not known:
            return []
        if resolution_s is not None:
            return self._read_at(known, start_ms, end_ms, resolution_s)
        now = time.time_ns() // 1_000_000
        groups: dict[int, list[tuple[int, SeriesMeta]]] = {}
        for item in known:
            chosen = self.resolution_for(item[1].name, start_ms, now)
            groups.setdefault(chosen, []).append(item)
        by_name: dict[str, SeriesData] = {}
        for chosen, group in groups.items():
            for data in self._read_at(group, start_ms, end_ms, chosen):
                by_name[data.series.name] = data
        return [by_name[meta.name] for _, meta in known]

    def _read_at(
        self,
        known: list[tuple[int, SeriesMeta]],
        start_ms: int,
        end_ms: int,
        resolution_s: int,
    ) -> list[SeriesData]:
        ids = [series_id for series_id, _ in known]
        cursor = self._cursor()
        params: list[object] = [ids, start_ms, end_ms]
        where = "series_id IN (SELECT unnest(?)) AND ts >= ? AND ts < ?"
        if len(ids) == 1:
            # An equality filter avoids the semi-join, which doubled a one-series read.
            params[0] = ids[0]
            where = "series_id = ? AND ts >= ? AND ts < ?"
        # The tables are stored sorted by (series_id, ts) within each compacted
        # run, but a parallel scan returns row groups in any order. Splitting
        # the rows into runs of one series is cheaper than an ORDER BY, which
        # took more than half of a 100-series weekly read.
        if resolution_s:
            result = cursor.execute(
                "SELECT series_id, ts, value FROM rollups"
                f" WHERE step_s = ? AND {where}",
                [resolution_s, *params],
            ).fetchnumpy()
            columns = _columns(result)
        else:
            # Staged rows first: compaction commits rows to `points` before it
            # deletes them from staging, so a compaction between the two
            # statements shows a row twice (merged) but never hides it.
            pending: Mapping[str, object] = {"seq": ()}
            if self._ingest_pending():
                pending = cursor.execute(
                    f"SELECT series_id, ts, value, seq FROM ingest WHERE {where}",
                    params,
                ).fetchnumpy()
            stored = cursor.execute(
                f"SELECT series_id, ts, value FROM points WHERE {where}", params
            ).fetchnumpy()
            columns = _merge_pending(stored, pending)
        by_id = _split_series(*columns)
        empty = (np.empty(0, np.int64), np.empty(0, np.float64))
        out = []
        for series_id, meta in known:
            ts, values = by_id.get(series_id, empty)
            out.append(SeriesData(meta, ts, values, resolution_s))
        return out

    def read_buckets(
        self, names: Sequence[str], spec: BucketSpec
    ) -> list[BucketValues] | None:
        """Aggregate each known named series into the buckets of `spec` in DuckDB."""
        known = self.catalog.lookup(names)
        return read_buckets(self._cursor(), known, spec, self._ingest_pending())

    def find(self, pattern: str) -> list[SeriesMeta]:
        """Return the series whose names match a Graphite glob, sorted by name."""
        regex = compile_glob(pattern)
        if not has_glob(pattern):
            return [meta for _, meta in self.catalog.lookup([pattern])]
        # Only names that start with the literal prefix can match the regex.
        candidates = self.catalog.with_prefix(literal_prefix(pattern))
        return [meta for meta in candidates if regex.match(meta.name)]

    def series(
        self, names: Sequence[str] | None = None, prefix: str = ""
    ) -> list[SeriesMeta]:
        """Return the metadata of the named series, or of all series under `prefix`."""
        if names is None:
            return self.catalog.with_prefix(prefix)
        return [meta for _, meta in self.catalog.lookup(names, unique=False)]

    def latest(self, names: Sequence[str] | None = None) -> list[LatestValue]:
        """Return the newest point of each named series, or of all series."""
        cursor = self._cursor()
        newest: dict[int, tuple[int, float]] = {}
        for series_id, ts, value in cursor.execute(
            "SELECT series_id, ts, value FROM latest"
        ).fetchall():
            newest[series_id] = (ts, value)
        # Ingest rows win over compacted ones at an equal timestamp.
        for series_id, ts, value in cursor.execute(
            "SELECT DISTINCT ON (series_id) series_id, ts, value FROM ingest"
            " ORDER BY series_id, ts DESC, seq DESC"
        ).fetchall():
            if series_id not in newest or ts >= newest[series_id][0]:
                newest[series_id] = (ts, value)
        wanted = None if names is None else set(names)
        out = []
        for series_id, (ts, value) in newest.items():
            meta = self.catalog.by_id(series_id)
            if meta is None or (wanted is not None and meta.name not in wanted):
                continue
            out.append(LatestValue(meta, int(ts), float(value)))
        out.sort(key=lambda v: v.series.name)
        return out

    def count_points(self) -> int:
        """Return the number of stored raw points (for tests and diagnostics)."""
        row = (
            self._cursor()
            .execute(
                "SELECT count(*) FROM (SELECT series_id, ts FROM points"
                " UNION SELECT series_id, ts FROM ingest)"
            )
            .fetchall()[0]
        )
        return int(row[0]) if row else 0

    def compact(self, max_rows: int = COMPACT_MAX_ROWS) -> int:
        """Move up to max_rows ingest rows into points; return the points moved."""
        with self._write_lock:
            con = self._con
            first = self._staging.first_seq()
            if first is None:
                return 0
            # No seq above next_seq - 1 is in use yet, and the rows that later
            # take one must not count as compacted, or a crash would lose them.
            max_seq = min(first + max_rows, self._staging.next_seq) - 1
            try:
                chunk = self._staging.take(max_seq)
            except duckdb.Error as exc:
                raise StorageError(f"reading staged rows failed: {exc}") from exc
            sids = chunk["series_id"]
            starts = np.flatnonzero(sids[1:] != sids[:-1]) + 1
            ids = sids[np.concatenate(([0], starts))] if sids.size else sids
            policies = self.catalog.group_by_policy(ids)
            con.execute("BEGIN TRANSACTION")
            try:
                moved = compact_ingest(con, chunk, policies)
                self._staging.record_compacted(max_seq)
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise StorageError(f"compaction failed: {exc}") from exc
            try:
                self._staging.release(max_seq)
            except duckdb.Error as exc:
                raise StorageError(
                    f"deleting compacted rows up to seq {max_seq} failed: {exc}"
                ) from exc
        logger.debug("compacted %d points", moved)
        return moved

    def maintain(
        self,
        now_ms: int | None = None,
        max_rows: int = COMPACT_MAX_ROWS,
        expire: bool = True,
    ) -> MaintenanceResult:
        """Do one chunk of background work: compaction, rollup backfill, expiry.

        Call again while the result's `more` is true.
        """
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        return run_maintenance(self, self._con, self._write_lock, now, max_rows, expire)

    def get_state(self, key: str) -> str | None:
        """Return a value stored with set_state, or None."""
        rows = (
            self._cursor()
            .execute("SELECT value FROM state WHERE key = ?", [key])
            .fetchall()
        )
        return str(rows[0][0]) if rows else None

    def set_state(self, items: Mapping[str, str]) -> None:
        """Store small key-value pairs in one transaction."""
        if not items:
            return
        with self._write_lock:
            self._con.executemany(
                "INSERT INTO state VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(items.items()),
            )

    def close(self) -> None:
        """Compact every staged row, checkpoint and close the database."""
        try:
            while self.compact():
                pass
        except StorageError:
            # The rows stay in the ingest log and are staged again on open.
            logger.exception("compaction before closing %s failed", self.path)
        with self._write_lock:
            self._staging.close()
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
            if self.path is not None:
                self._con.execute("CHECKPOINT")
            self._con.close()
        logger.info("DuckDB store at %s closed", self.path or ":memory:")


Columns = tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.float64]]


def _columns(result: Mapping[str, object]) -> Columns:
    return (
        np.asarray(result["series_id"], dtype=np.int32),
        np.asarray(result["ts"], dtype=np.int64),
        np.asarray(result["value"], dtype=np.float64),
    )


def _split_series(
    sids: npt.NDArray[np.int32],
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Return fresh (timestamps, values) arrays per series id, ordered by time.

    The rows come as runs of one series, each ordered by time unless the
    table was written out of order, so only the runs are gathered and sorted.
    """
    starts = np.flatnonzero(np.diff(sids)) + 1
    bounds = [0, *starts.tolist(), int(sids.size)]
    runs: dict[int, list[tuple[int, int]]] = {}
    for low, high in itertools.pairwise(bounds):
        if high > low:
            runs.setdefault(int(sids[low]), []).append((low, high))
    out = {}
    for series_id, spans in runs.items():
        if len(spans) == 1:
            low, high = spans[0]
            stamps, points = ts[low:high].copy(), values[low:high].copy()
        else:
            spans.sort(key=lambda span: int(ts[span[0]]))
            stamps = np.concatenate([ts[low:high] for low, high in spans])
            points = np.concatenate([values[low:high] for low, high in spans])
        if stamps.size > 1 and not bool(np.all(stamps[1:] > stamps[:-1])):
            order = np.argsort(stamps, kind="stable")
            stamps, points = stamps[order], points[order]
        out[series_id] = (stamps, points)
    return out


def _merge_pending(
    stored: Mapping[str, object], pending: Mapping[str, object]
) -> Columns:
    """Merge compacted rows with unsorted ingest rows; the newest write wins."""
    sids, ts, values = _columns(stored)
    extra_seq = np.asarray(pending["seq"], dtype=np.int64)
    if extra_seq.size == 0:
        return sids, ts, values
    extra_sids, extra_ts, extra_values = _columns(pending)
    all_sids = np.concatenate([sids, extra_sids])
    all_ts = np.concatenate([ts, extra_ts])
    all_values = np.concatenate([values, extra_values])
    # Compacted rows get seq 0, so any ingest row for the same timestamp wins.
    all_seq = np.concatenate([np.zeros(sids.size, np.int64), extra_seq])
    order = np.lexsort((all_seq, all_ts, all_sids))
    all_sids, all_ts, all_values = all_sids[order], all_ts[order], all_values[order]
    keep = np.ones(all_sids.size, dtype=bool)
    keep[:-1] = (all_sids[1:] != all_sids[:-1]) | (all_ts[1:] != all_ts[:-1])
    return all_sids[keep], all_ts[keep], all_values[keep]
