"""The DuckDB store's staging table: appended rows waiting for compaction.

The rows live in a table of an attached in-memory database, so the churn of
appending and deleting them never leaves free blocks in the database file.
An append is durable because it is fsynced to an IngestLog before it is
inserted. Compaction records the highest sequence number it moved in the
`state` table, in the same transaction that writes `points`. On open the log
is replayed from that number on, so a crash at any step neither loses an
accepted row nor moves one twice. The view `main.ingest` keeps the name that
readers query.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from citymesh.storage.ingest_log import IngestLog

logger = logging.getLogger(__name__)

CATALOG = "citymesh_staging"
TABLE = f"{CATALOG}.ingest"
COMPACTED_KEY = "ingest.compacted_seq"


class IngestStaging:
    """The staging table, its log and the sequence numbers of both."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self._con = con
        con.execute(f"ATTACH ':memory:' AS {CATALOG}")
        con.execute(
            f"CREATE TABLE {TABLE} (series_id INTEGER NOT NULL, ts BIGINT NOT NULL,"
            " value DOUBLE NOT NULL, seq BIGINT NOT NULL)"
        )
        self.log = None if path is None else IngestLog(log_directory(path))
        self.compacted_seq = self._stored_compacted_seq()
        self._migrate_ingest_table()
        self.next_seq = self._replay() + 1

    def _stored_compacted_seq(self) -> int:
        rows = self._con.execute(
            "SELECT value FROM state WHERE key = ?", [COMPACTED_KEY]
        ).fetchall()
        return int(rows[0][0]) if rows else 0

    def _migrate_ingest_table(self) -> None:
        """Move the rows of a file's own `ingest` table into the log, then drop it.

        Earlier versions kept staging rows in the database file. A log left
        by a migration that crashed before the drop is discarded first,
        because the table still contains all of its rows.
        """
        con = self._con
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables"
            " WHERE table_catalog = current_database() AND table_schema = 'main'"
            " AND table_name = 'ingest'"
        ).fetchall()
        if kind and kind[0][0] == "BASE TABLE":
            rows = con.execute(
                "SELECT series_id, ts, value FROM main.ingest ORDER BY seq"
            ).fetchnumpy()
            count = len(rows["series_id"])
            logger.info("moving %d uncompacted rows out of the database file", count)
            if self.log is not None:
                self.log.clear()
                if count:
                    self.log.append(
                        self.compacted_seq + 1,
                        np.asarray(rows["series_id"], dtype=np.int32),
                        np.asarray(rows["ts"], dtype=np.int64),
                        np.asarray(rows["value"], dtype=np.float64),
                    )
            con.execute("BEGIN TRANSACTION")
            con.execute("DROP TABLE main.ingest")
            self._create_view()
            con.execute("COMMIT")
        elif not kind:
            self._create_view()

    def _create_view(self) -> None:
        self._con.execute(f"CREATE VIEW main.ingest AS SELECT * FROM {TABLE}")

    def _replay(self) -> int:
        """Insert the logged rows not compacted yet; return the last seq in use."""
        if self.log is None:
            return self.compacted_seq
        replayed = 0
        for record in self.log.replay(self.compacted_seq):
            seqs = np.arange(record.first_seq, record.last_seq + 1, dtype=np.int64)
            self.insert(record.series_ids, record.timestamps, record.values, seqs)
            replayed += int(seqs.size)
        self.log.release(self.compacted_seq)
        if replayed:
            logger.info(
                "replayed %d uncompacted rows from %s", replayed, self.log.directory
            )
        return max(self.log.last_seq, self.compacted_seq)

    def next_seqs(self, count: int) -> npt.NDArray[np.int64]:
        """Reserve `count` sequence numbers."""
        first = self.next_seq
        self.next_seq += count
        return np.arange(first, first + count, dtype=np.int64)

    def append(
        self,
        series_ids: npt.NDArray[np.int32],
        timestamps: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.int64]:
        """Log rows durably, then insert them; return their sequence numbers.

        Raises StorageError when the log write fails, and duckdb.Error when
        the insert does. A row logged but not inserted is inserted on the
        next open, which is harmless because the caller retries with the
        same values.
        """
        seqs = self.next_seqs(int(series_ids.size))
        if self.log is not None:
            self.log.append(int(seqs[0]), series_ids, timestamps, values)
        self.insert(series_ids, timestamps, values, seqs)
        return seqs

    def insert(
        self,
        series_ids: npt.NDArray[np.int32],
        timestamps: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        seqs: npt.NDArray[np.int64],
    ) -> None:
        """Insert rows into the staging table without logging them."""
        con = self._con
        con.register(
            "citymesh_staged",
            {
                "series_id": series_ids.astype(np.int32, copy=False),
                "ts": timestamps.astype(np.int64, copy=False),
                "value": values.astype(np.float64, copy=False),
                "seq": seqs,
            },
        )
        try:
            con.execute(f"INSERT INTO {TABLE} SELECT * FROM citymesh_staged")
        finally:
            con.unregister("citymesh_staged")

    def first_seq(self) -> int | None:
        """Return the lowest staged seq, or None when no row is staged."""
        row = self._con.execute(f"SELECT min(seq) FROM {TABLE}").fetchall()[0]
        if row[0] is None:
            # Appends that failed after reserving seqs leave gaps; nothing
            # below next_seq is pending any more.
            self.compacted_seq = self.next_seq - 1
            if self.log is not None:
                self.log.release(self.compacted_seq)
            return None
        return int(row[0])

    def take(self, max_seq: int) -> dict[str, npt.NDArray[Any]]:
        """Return the staged rows up to max_seq, last write per timestamp, sorted.

        The columns are series_id, ts and value, ordered by series and time.
        """
        rows = self._con.execute(
            f"SELECT series_id, ts, value, seq FROM {TABLE} WHERE seq <= ?",
            [max_seq],
        ).fetchnumpy()
        return sort_unique(
            np.asarray(rows["series_id"], dtype=np.int32),
            np.asarray(rows["ts"], dtype=np.int64),
            np.asarray(rows["value"], dtype=np.float64),
            np.asarray(rows["seq"], dtype=np.int64),
        )

    def record_compacted(self, max_seq: int) -> None:
        """Store `max_seq` as compacted, inside the caller's compaction transaction."""
        self._con.execute(
            "INSERT INTO state VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [COMPACTED_KEY, str(max_seq)],
        )

    def release(self, max_seq: int) -> None:
        """Delete the rows compaction moved, after its transaction committed.

        DuckDB lets one transaction write to one attached database only, so
        this is a transaction of its own.
        """
        self._con.execute(f"DELETE FROM {TABLE} WHERE seq <= ?", [max_seq]).fetchall()
        self.compacted_seq = max(self.compacted_seq, max_seq)
        if self.log is not None:
            self.log.release(self.compacted_seq)

    def pending_rows(self) -> int:
        """Return the number of staged rows not compacted yet."""
        return max(0, self.next_seq - 1 - self.compacted_seq)

    def close(self) -> None:
        """Close the log file."""
        if self.log is not None:
            self.log.close()


def sort_unique(
    series_ids: npt.NDArray[np.int32],
    timestamps: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    seqs: npt.NDArray[np.int64],
) -> dict[str, npt.NDArray[Any]]:
    """Sort rows by series and time, keeping the highest seq of equal timestamps.

    Rows mostly arrive in time order per series, so a stable sort by series
    alone usually suffices, and numpy's timsort is fast on such runs. Only
    when a series then has a timestamp that does not increase are all three
    keys sorted.
    """
    order = np.argsort(series_ids, kind="stable")
    sids, stamps = series_ids[order], timestamps[order]
    same = sids[1:] == sids[:-1]
    if bool(np.all(stamps[1:][same] > stamps[:-1][same])):
        return {"series_id": sids, "ts": stamps, "value": values[order]}
    order = np.lexsort((seqs, timestamps, series_ids))
    sids, stamps = series_ids[order], timestamps[order]
    last = np.ones(sids.size, dtype=bool)
    last[:-1] = (sids[1:] != sids[:-1]) | (stamps[1:] != stamps[:-1])
    return {"series_id": sids[last], "ts": stamps[last], "value": values[order][last]}


def log_directory(path: Path) -> Path:
    """Return the ingest log directory of the database file at `path`."""
    return path.with_name(path.name + ".ingest")
