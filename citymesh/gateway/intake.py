"""Group commit of accepted readings: one buffer transaction per commit interval.

Each commit of the buffer is a transaction with an fsync, and its hand-off to
the buffer's worker thread costs the event loop as much as the commit itself.
A source that delivers small slices often (a replay at 1,000 readings/s yields
about 50 a second) would pay that for every slice. The intake therefore keeps
the checked readings of one commit interval and commits them together. A
slice that arrives after a quiet interval is committed at once, so a slow
source gets no added delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from citymesh.gateway.sources import RecordedReading

logger = logging.getLogger(__name__)

Commit = Callable[[list[RecordedReading]], Awaitable[None]]


class Intake:
    """Readings checked on acceptance and waiting for their group commit.

    `put` returns once the readings are queued, not committed. Nothing else
    happens to a reading before `commit` returns for it, so a reading is never
    sent unless it is in the buffer. A crash or power cut loses the queued
    readings: at most one commit interval of them, plus the commit in
    progress.
    """

    def __init__(
        self, commit: Commit, interval_s: float, max_commit: int, max_pending: int
    ) -> None:
        self._commit = commit
        self.interval_s = interval_s
        self.max_commit = max_commit
        """Readings per transaction at most, so that one commit fits a small
        buffer whose oldest readings are dropped to make room."""
        self.max_pending = max_pending
        self._pending: list[RecordedReading] = []
        self._arrived = asyncio.Event()
        self._room_made = asyncio.Event()

    @property
    def pending(self) -> int:
        """Return the number of readings queued and not yet committed."""
        return len(self._pending)

    async def put(self, readings: Sequence[RecordedReading]) -> None:
        """Queue checked readings, waiting while `max_pending` are queued."""
        while len(self._pending) >= self.max_pending:
            self._room_made.clear()
            await self._room_made.wait()
        self._pending.extend(readings)
        self._arrived.set()

    async def run(self) -> None:
        """Commit what is queued, then wait one interval unless more is queued."""
        while True:
            await self._arrived.wait()
            await self._commit_next()
            if not self._pending and self.interval_s > 0:
                await asyncio.sleep(self.interval_s)

    async def flush(self) -> None:
        """Commit every queued reading now."""
        while self._pending:
            await self._commit_next()

    async def _commit_next(self) -> None:
        readings = self._pending[: self.max_commit]
        del self._pending[: self.max_commit]
        if not self._pending:
            self._arrived.clear()
        self._room_made.set()
        if readings:
            await self._commit(readings)
