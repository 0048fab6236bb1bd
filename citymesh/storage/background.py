"""The task that runs the store's compaction, rollups and expiry in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from citymesh.errors import StorageError
from citymesh.storage.duckdb_store import DuckDBStore

logger = logging.getLogger(__name__)

# Expiry deletes across whole tables, so it runs less often than compaction.
EXPIRE_EVERY_S = 60.0


class StoreMaintenance:
    """Run `DuckDBStore.maintain` in a worker thread every interval, as a context."""

    def __init__(self, store: DuckDBStore, interval_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self.passes = 0

    async def __aenter__(self) -> StoreMaintenance:
        self._task = asyncio.create_task(self._run(), name="store-maintenance")
        return self

    def run_soon(self) -> None:
        """Start the next pass now instead of at the end of the interval."""
        self._wakeup.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_expiry = loop.time()
        while True:
            due = loop.time() - last_expiry >= EXPIRE_EVERY_S
            try:
                result = await asyncio.to_thread(self._store.maintain, expire=due)
            except StorageError:
                logger.exception(
                    "store maintenance failed; retrying in %.1f s", self._interval_s
                )
                result = None
            self.passes += 1
            if result is not None and due and not result.more:
                last_expiry = loop.time()
            if result is not None and result.more:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._interval_s)
            self._wakeup.clear()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
