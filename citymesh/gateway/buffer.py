"""The gateway's durable store-and-forward buffer: SQLite in WAL mode.

Every accepted reading is committed to the `readings` table before the agent
does anything else with it. A batch is formed from a contiguous range of
reading ids and recorded in `batches` with its sequence number and send time
in the same transaction that advances the sequence counter, so a resent
batch always carries the number it was first sent with. Readings and their
batch row are deleted only when the broker acknowledged the batch.

Durability: commits that accept readings or form a batch run with
`synchronous=FULL` (the WAL is fsynced before the commit returns); the
deletes after an acknowledgement run with `synchronous=NORMAL`, because losing
one only makes the batch go out again, and the collector drops it by sequence
number. A power cut therefore loses at most the readings of the one append that
was being committed, besides those the agent had not yet handed to `append`
(citymesh/gateway/intake.py).

Bounds: the database file may not grow past `max_bytes` (SQLite's
`max_page_count`), and readings older than `max_age_s` are dropped. When a write
fails for lack of space, whether from that bound or a full disk, the oldest
readings not in an unacknowledged batch are deleted and the write retried.
Every dropped reading is counted.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from citymesh.errors import CitymeshError
from citymesh.gateway.drops import Drop, DropLog
from citymesh.gateway.lock import BufferLock
from citymesh.gateway.sources import RecordedReading

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Readings deleted per attempt when a write finds no space. A page of 4 KiB
# stores about 90 readings, so this frees a few pages per attempt.
DROP_CHUNK = 256
# Attempts to make room before the incoming readings themselves are dropped.
MAX_ROOM_ATTEMPTS = 64
# The age limit is enforced at most this often, because it needs a query.
AGE_CHECK_INTERVAL_MS = 1000

_SCHEMA = """
-- AUTOINCREMENT: ids must never be reused, even after the table was
-- emptied, because the sender's cursors are reading ids.
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    accepted_ms INTEGER NOT NULL,
    device TEXT NOT NULL,
    quantity TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    value NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    points INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# A function that turns (seq, sent_ms, readings) into the published payload.
Encoder = Callable[[int, int, Sequence[RecordedReading]], bytes]


class BufferError(CitymeshError):
    """The buffer's database could not be opened or written."""


@dataclass(frozen=True, slots=True)
class BufferedBatch:
    """A formed batch: its sequence number, reading id range and payload."""

    seq: int
    first_id: int
    last_id: int
    points: int
    sent_ms: int
    payload: bytes


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _is_full(exc: sqlite3.Error) -> bool:
    # SQLITE_FULL comes from max_page_count and from ENOSPC. A write cut short
    # by a file size limit (EFBIG) surfaces as SQLITE_IOERR_WRITE instead.
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_WRITE) or (
        "disk is full" in str(exc)
    )


class ReadingBuffer:
    """Readings accepted by the gateway and not yet acknowledged by the broker."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        max_age_s: float,
        first_seq: int = 0,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.path = path
        self._max_age_ms = int(max_age_s * 1000)
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = BufferLock(path)
        try:
            # The agent calls the buffer from one worker thread at a time, which
            # need not be the thread that opened it.
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            pages = max(16, max_bytes // page_size)
            self._db.execute(f"PRAGMA max_page_count={pages}")
            # A checkpoint every 256 KiB of WAL keeps the WAL small, so a
            # full disk leaves room to copy it back and truncate it.
            self._db.execute("PRAGMA wal_autocheckpoint=64")
            self._db.execute("PRAGMA synchronous=FULL")
            row = self._db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta(key, value) VALUES ('seq', ?)", (first_seq,)
                )
            self._next_seq = first_seq if row is None else int(row[0])
            self.count = int(
                self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
            )
            last = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'readings'"
            ).fetchone()
        except sqlite3.Error as exc:
            self._lock.release()
            raise BufferError(f"cannot open the reading buffer {path}: {exc}") from exc
        self.last_id = 0 if last is None else int(last[0])
        # Id ranges of batches formed but not acknowledged, by sequence number.
        self._unacked: dict[int, tuple[int, int]] = {
            int(seq): (int(first), int(last))
            for seq, first, last in self._db.execute(
                "SELECT seq, first_id, last_id FROM batches ORDER BY seq"
            )
        }
        self._next_age_check_ms = 0
        self._drops = DropLog(path)
        logger.info(
            "gateway buffer %s opened: %d readings, %d unacknowledged batches, "
            "next sequence number %d",
            path,
            self.count,
            len(self._unacked),
            self._next_seq,
        )

    @property
    def next_seq(self) -> int:
        """Return the sequence number the next formed batch gets."""
        return self._next_seq

    @property
    def dropped_total(self) -> int:
        """Return the number of readings dropped unsent since the buffer opened."""
        return self._drops.total

    @property
    def unacked_count(self) -> int:
        """Return the number of batches formed and not yet acknowledged."""
        return len(self._unacked)

    def close(self) -> None:
        """Log an open drop episode, checkpoint the WAL and close the database."""
        self.end_drop_episode()
        self._checkpoint()
        self._db.close()
        self._lock.release()

    def append(self, readings: Sequence[RecordedReading]) -> None:
        """Commit `readings` durably, making room by dropping the oldest if needed."""
        if not readings:
            return
        now = self._clock()
        rows = [(now, r.device, r.quantity, r.timestamp_ms, r.value) for r in readings]

        def insert() -> int:
            cursor = self._db.executemany(
                "INSERT INTO readings(accepted_ms, device, quantity, timestamp_ms,"
                " value) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            last = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
            return int(last) if cursor.rowcount else self.last_id

        last_id = self._write(insert, give_up=lambda: self._drop_incoming(rows))
        if last_id is not None:
            self.last_id = last_id
            self.count += len(rows)
        self._check_age()

    def _drop_incoming(self, rows: list[tuple[int, str, str, int, float]]) -> None:
        stamps = [row[3] for row in rows]
        self._drops.record(Drop(len(rows), min(stamps), max(stamps)))

    def oldest_accepted_ms(self) -> int | None:
        """Return when the oldest buffered reading was accepted, or None if empty."""
        row = self._db.execute(
            "SELECT accepted_ms FROM readings ORDER BY id LIMIT 1"
        ).fetchone()
        return None if row is None else int(row[0])

    def unacked(self, encode: Encoder) -> list[BufferedBatch]:
        """Rebuild the batches formed but not acknowledged, oldest first."""
        batches = []
        for seq, (first, last) in sorted(self._unacked.items()):
            row = self._db.execute(
                "SELECT sent_ms FROM batches WHERE seq = ?", (seq,)
            ).fetchone()
            readings = self._select(first - 1, last, None)
            if not readings or row is None:
                self._forget(seq)
                continue
            sent_ms = int(row[0])
            batches.append(
                BufferedBatch(
                    seq,
                    first,
                    last,
                    len(readings),
                    sent_ms,
                    encode(seq, sent_ms, readings),
                )
            )
        return batches

    def form_batch(
        self, after_id: int, upto_id: int, max_points: int, encode: Encoder
    ) -> BufferedBatch | None:
        """Form the next batch from readings with ids in (after_id, upto_id].

        Ranges already in an unacknowledged batch are skipped. Returns None
        when no such reading is left; the batch's `last_id` is the cursor for
        the next call.
        """
        while True:
            limit = upto_id
            covering = self._first_unacked_after(after_id)
            if covering is not None and covering[0] <= upto_id:
                if covering[0] <= after_id + 1:
                    after_id = covering[1]
                    continue
                limit = covering[0] - 1
            readings_ids = self._select_with_ids(after_id, limit, max_points)
            if readings_ids:
                break
            if covering is not None and covering[0] <= upto_id:
                after_id = covering[1]
                continue
            return None
        first_id = readings_ids[0][0]
        last_id = readings_ids[-1][0]
        readings = [reading for _, reading in readings_ids]
        seq = self._next_seq
        sent_ms = self._clock()
        payload = encode(seq, sent_ms, readings)

        def record() -> bool:
            self._db.execute(
                "INSERT INTO batches(seq, first_id, last_id, points, sent_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (seq, first_id, last_id, len(readings), sent_ms),
            )
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq + 1,))
            return True

        if not self._write(record, give_up=None, protect=(first_id, last_id)):
            return None
        self._next_seq = seq + 1
        self._unacked[seq] = (first_id, last_id)
        return BufferedBatch(seq, first_id, last_id, len(readings), sent_ms, payload)

    def acknowledge(self, batch: BufferedBatch) -> None:
        """Delete an acknowledged batch and its readings."""
        if batch.seq not in self._unacked:
            return
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "DELETE FROM readings WHERE id BETWEEN ? AND ?",
                (batch.first_id, batch.last_id),
            )
            self._db.execute("DELETE FROM batches WHERE seq = ?", (batch.seq,))
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._rollback()
            raise
        finally:
            self._db.execute("PRAGMA synchronous=FULL")
        self.count -= max(0, cursor.rowcount)
        del self._unacked[batch.seq]
        # An acknowledgement means the link works again, so the buffer drains.
        self.end_drop_episode()

    def end_drop_episode(self) -> Drop | None:
        """Close the current drop episode, logging and returning its totals.

        Every acknowledgement and `close` call this, so a drop after the link
        came back starts a new episode.
        """
        return self._drops.end_episode()

    def _forget(self, seq: int) -> None:
        self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        self._unacked.pop(seq, None)

    def _first_unacked_after(self, after_id: int) -> tuple[int, int] | None:
        ranges = [r for r in self._unacked.values() if r[1] > after_id]
        return min(ranges) if ranges else None

    def _select_with_ids(
        self, after_id: int, upto_id: int, limit: int
    ) -> list[tuple[int, RecordedReading]]:
        cursor = self._db.execute(
            "SELECT id, device, quantity, timestamp_ms, value FROM readings "
            "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after_id, upto_id, limit),
        )
        return [
            (row[0], RecordedReading(row[1], row[2], row[3], row[4])) for row in cursor
        ]

    def _select(
        self, after_id: int, upto_id: int, limit: int | None
    ) -> list[RecordedReading]:
        rows = self._select_with_ids(after_id, upto_id, limit or -1)
        return [reading for _, reading in rows]

    def _write(
        self,
        work: Callable[[], T],
        give_up: Callable[[], None] | None,
        protect: tuple[int, int] | None = None,
    ) -> T | None:
        """Run `work` in a transaction, dropping the oldest readings while full."""
        for _ in range(MAX_ROOM_ATTEMPTS):
            try:
                self._db.execute("BEGIN IMMEDIATE")
                result = work()
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                self._rollback()
                if not _is_full(exc):
                    raise BufferError(
                        f"gateway buffer {self.path}: write failed: {exc}"
                    ) from exc
                self._checkpoint()
                self._cap_at_current_size()
                if not self._drop_oldest(DROP_CHUNK, protect):
                    break
        logger.error(
            "gateway buffer %s: no space even after dropping every reading that "
            "could go",
            self.path,
        )
        if give_up is not None:
            give_up()
        return None

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                logger.warning("gateway buffer %s: rollback failed: %s", self.path, exc)

    def _droppable(self, protect: tuple[int, int] | None) -> tuple[str, list[int]]:
        ranges = list(self._unacked.values())
        if protect is not None:
            ranges.append(protect)
        clause = " AND ".join("NOT (id BETWEEN ? AND ?)" for _ in ranges) or "1"
        params = [bound for r in ranges for bound in r]
        return clause, params

    def _drop_oldest(self, count: int, protect: tuple[int, int] | None) -> bool:
        clause, params = self._droppable(protect)
        return self._drop_where(
            f"id IN (SELECT id FROM readings WHERE {clause} ORDER BY id LIMIT ?)",
            [*params, count],
        )

    def _drop_where(self, where: str, params: Sequence[object]) -> bool:
        """Delete matching readings in one transaction; tell whether any went."""
        try:
            return self._delete_where(where, params)
        except sqlite3.Error as exc:
            self._rollback()
            if not _is_full(exc):
                raise BufferError(
                    f"gateway buffer {self.path}: dropping readings failed: {exc}"
                ) from exc
        # Even a delete appends to the WAL. Copying the WAL into the database
        # and truncating it frees that space, after which the delete fits.
        self._checkpoint()
        try:
            return self._delete_where(where, params)
        except sqlite3.Error as exc:
            self._rollback()
            logger.error(
                "gateway buffer %s: no space left even to drop readings: %s",
                self.path,
                exc,
            )
            return False

    def _cap_at_current_size(self) -> None:
        # The file system refused to grow the database: from now on SQLite
        # reuses the pages it has instead of asking for more.
        try:
            pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
            self._db.execute(f"PRAGMA max_page_count={pages}")
        except sqlite3.Error as exc:
            logger.warning("gateway buffer %s: cannot cap its size: %s", self.path, exc)

    def _checkpoint(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            logger.warning("gateway buffer %s: checkpoint failed: %s", self.path, exc)

    def _delete_where(self, where: str, params: Sequence[object]) -> bool:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            count, first_ms, last_ms = self._db.execute(
                f"SELECT COUNT(*), MIN(timestamp_ms), MAX(timestamp_ms) "
                f"FROM readings WHERE {where}",
                params,
            ).fetchone()
            if count:
                self._db.execute(f"DELETE FROM readings WHERE {where}", params)
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._rollback()
            raise
        if not count:
            return False
        self.count -= int(count)
        self._drops.record(Drop(int(count), int(first_ms), int(last_ms)))
        return True

    def _check_age(self) -> None:
        now = self._clock()
        if now < self._next_age_check_ms or not self._max_age_ms:
            return
        self._next_age_check_ms = now + AGE_CHECK_INTERVAL_MS
        cutoff = now - self._max_age_ms
        oldest = self.oldest_accepted_ms()
        if oldest is None or oldest >= cutoff:
            return
        clause, params = self._droppable(None)
        # accepted_ms grows with id, so the expired readings are the lowest ids.
        last_expired = self._db.execute(
            "SELECT MAX(id) FROM readings WHERE accepted_ms < ?", (cutoff,)
        ).fetchone()[0]
        if last_expired is not None:
            self._drop_where(f"id <= ? AND {clause}", [int(last_expired), *params])
