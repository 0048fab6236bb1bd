"""Embedded time-series store on DuckDB: one file, no server."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from citymesh.errors import StorageError
from citymesh.storage.base import LatestValue, PointsBlock, SeriesData, SeriesMeta
from citymesh.storage.patterns import compile_glob

logger = logging.getLogger(__name__)

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS points (
    series_id INTEGER NOT NULL,
    ts BIGINT NOT NULL,
    value DOUBLE NOT NULL,
    PRIMARY KEY (series_id, ts)
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


class DuckDBStore:
    """A TimeSeriesStore in one DuckDB database file, or in memory when path is None.

    One process owns the file. Writes are serialised by a lock; reads use a
    cursor per thread and see the last committed write.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(path) if path is not None else ":memory:")
        except duckdb.IOException as exc:
            raise StorageError(
                f"cannot open the DuckDB store at {path}: {exc}. Another citymesh "
                "server may be using it; stop it or choose another data directory"
            ) from exc
        self._con.execute(_SCHEMA)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._by_name: dict[str, tuple[int, SeriesMeta]] = {}
        self._by_id: dict[int, SeriesMeta] = {}
        self._load_series()
        logger.info(
            "DuckDB store open at %s with %d series",
            path or ":memory:",
            len(self._by_name),
        )

    def _load_series(self) -> None:
        rows = self._con.execute(
            "SELECT id, name, tenant, site, gateway, device, quantity, unit, step_s,"
            " tags FROM series"
        ).fetchall()
        for row in rows:
            meta = SeriesMeta(
                name=row[1],
                tenant=row[2],
                site=row[3],
                gateway=row[4],
                device=row[5],
                quantity=row[6],
                unit=row[7],
                step_s=row[8],
                tags=json.loads(row[9]),
            )
            self._by_name[meta.name] = (row[0], meta)
            self._by_id[row[0]] = meta

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            self._local.cursor = cursor
            with self._write_lock:
                self._cursors.append(cursor)
        return cursor

    def _series_id(self, meta: SeriesMeta) -> int:
        """Return the id of a series, registering or updating its metadata."""
        known = self._by_name.get(meta.name)
        tags = json.dumps(dict(meta.tags), sort_keys=True)
        if known is not None:
            series_id, old = known
            if old != meta:
                self._con.execute(
                    "UPDATE series SET unit = ?, step_s = ?, tags = ? WHERE id = ?",
                    [meta.unit, meta.step_s, tags, series_id],
                )
                self._by_name[meta.name] = (series_id, meta)
                self._by_id[series_id] = meta
            return series_id
        series_id = len(self._by_id) + 1
        self._con.execute(
            "INSERT INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                series_id,
                meta.name,
                meta.tenant,
                meta.site,
                meta.gateway,
                meta.device,
                meta.quantity,
                meta.unit,
                meta.step_s,
                tags,
            ],
        )
        self._by_name[meta.name] = (series_id, meta)
        self._by_id[series_id] = meta
        logger.debug("new series %s (id %d)", meta.name, series_id)
        return series_id

    def write(self, blocks: Sequence[PointsBlock]) -> int:
        """Store all blocks in one transaction; return the points newly added."""
        blocks = [b for b in blocks if b.timestamps.size]
        if not blocks:
            return 0
        with self._write_lock:
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                ids = [self._series_id(b.series) for b in blocks]
                batch = _dedupe(
                    np.concatenate(
                        [
                            np.full(b.timestamps.size, i, np.int32)
                            for b, i in zip(blocks, ids, strict=True)
                        ]
                    ),
                    np.concatenate([b.timestamps.astype(np.int64) for b in blocks]),
                    np.concatenate([b.values.astype(np.float64) for b in blocks]),
                )
                con.register("citymesh_batch", batch)
                added = con.execute(
                    "INSERT OR IGNORE INTO points"
                    " SELECT sid, ts, value FROM citymesh_batch"
                ).fetchone()
                con.execute(
                    """
                    INSERT INTO latest
                    SELECT sid, max(ts), arg_max(value, ts)
                    FROM citymesh_batch GROUP BY sid
                    ON CONFLICT (series_id) DO UPDATE
                    SET ts = excluded.ts, value = excluded.value
                    WHERE excluded.ts >= latest.ts
                    """
                )
                con.unregister("citymesh_batch")
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                self._reload_after_rollback()
                raise StorageError(
                    f"write of {len(blocks)} series failed: {exc}"
                ) from exc
        return int(added[0]) if added else 0

    def _reload_after_rollback(self) -> None:
        self._by_name.clear()
        self._by_id.clear()
        self._load_series()

    def read(
        self, names: Sequence[str], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        """Return the points of each known named series with start <= t < end."""
        known = [self._by_name[n] for n in dict.fromkeys(names) if n in self._by_name]
        if not known:
            return []
        ids = [series_id for series_id, _ in known]
        result = (
            self._cursor()
            .execute(
                "SELECT series_id, ts, value FROM points"
                " WHERE series_id IN (SELECT unnest(?)) AND ts >= ? AND ts < ?"
                " ORDER BY series_id, ts",
                [ids, start_ms, end_ms],
            )
            .fetchnumpy()
        )
        sids = np.asarray(result["series_id"], dtype=np.int64)
        ts = np.asarray(result["ts"], dtype=np.int64)
        values = np.asarray(result["value"], dtype=np.float64)
        out = []
        for series_id, meta in known:
            lo, hi = np.searchsorted(sids, [series_id, series_id + 1])
            out.append(SeriesData(meta, ts[lo:hi].copy(), values[lo:hi].copy()))
        return out

    def find(self, pattern: str) -> list[SeriesMeta]:
        """Return the series whose names match a Graphite glob, sorted by name."""
        regex = compile_glob(pattern)
        return sorted(
            (meta for _, meta in self._by_name.values() if regex.match(meta.name)),
            key=lambda m: m.name,
        )

    def series(self, names: Sequence[str] | None = None) -> list[SeriesMeta]:
        """Return the metadata of the named series, or of all series."""
        if names is None:
            return sorted((m for _, m in self._by_name.values()), key=lambda m: m.name)
        return [self._by_name[n][1] for n in names if n in self._by_name]

    def latest(self, names: Sequence[str] | None = None) -> list[LatestValue]:
        """Return the newest point of each named series, or of all series."""
        rows = (
            self._cursor().execute("SELECT series_id, ts, value FROM latest").fetchall()
        )
        wanted = None if names is None else set(names)
        out = []
        for series_id, ts, value in rows:
            meta = self._by_id.get(series_id)
            if meta is None or (wanted is not None and meta.name not in wanted):
                continue
            out.append(LatestValue(meta, int(ts), float(value)))
        out.sort(key=lambda v: v.series.name)
        return out

    def count_points(self) -> int:
        """Return the number of stored points (for tests and diagnostics)."""
        row = self._cursor().execute("SELECT count(*) FROM points").fetchone()
        return int(row[0]) if row else 0

    def get_state(self, key: str) -> str | None:
        """Return a value stored with set_state, or None."""
        row = (
            self._cursor()
            .execute("SELECT value FROM state WHERE key = ?", [key])
            .fetchone()
        )
        return None if row is None else str(row[0])

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
        """Checkpoint and close the database."""
        with self._write_lock:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
            if self.path is not None:
                self._con.execute("CHECKPOINT")
            self._con.close()
        logger.info("DuckDB store at %s closed", self.path or ":memory:")


def _dedupe(sids: Any, ts: Any, values: Any) -> dict[str, Any]:
    """Keep the first point of each (series, timestamp) within one batch."""
    order = np.lexsort((ts, sids))
    sids, ts, values = sids[order], ts[order], values[order]
    keep = np.ones(sids.size, dtype=bool)
    keep[1:] = (sids[1:] != sids[:-1]) | (ts[1:] != ts[:-1])
    return {"sid": sids[keep], "ts": ts[keep], "value": values[keep]}
