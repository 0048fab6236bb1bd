"""The collector's write path: accepted batches in, stored points and acks out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from citymesh.collector.delivery import Delivery
from citymesh.collector.events import Event, EventHub
from citymesh.collector.sequence import SequenceStates
from citymesh.collector.stats import CollectorStats
from citymesh.errors import StorageError
from citymesh.registry.store import Registry, SensorRef
from citymesh.server.settings import CollectorSettings
from citymesh.storage.base import PointsBlock, TimeSeriesStore
from citymesh.transport.backoff import Backoff

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class AcceptedBatch:
    """A validated readings batch waiting to be stored and acknowledged."""

    gateway_key: tuple[str, str]
    seq: int
    blocks: list[PointsBlock]
    new_sensors: list[SensorRef]
    """Sensors of the batch the registry may not have yet."""
    points: int
    delivery: Delivery


class BatchWriter:
    """Stores accepted batches in the order received, then acknowledges them.

    A write starts as soon as a batch is queued and the previous write is
    done. Batches that arrive while a write runs are stored together by the
    next one, so the writes grow with the load and a lone batch waits for
    nothing.
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        registry: Registry,
        hub: EventHub,
        settings: CollectorSettings,
        stats: CollectorStats,
        states: SequenceStates,
        ack: Callable[[Delivery], None],
    ) -> None:
        self._store = store
        self._registry = registry
        self._hub = hub
        self._settings = settings
        self._stats = stats
        self._states = states
        self._ack = ack
        self.queue: asyncio.Queue[AcceptedBatch | None] = asyncio.Queue(
            settings.queue_max_batches
        )
        self.writing = False

    async def run(self) -> None:
        """Write batches until the None that `Collector.stop` queues comes out."""
        stopping = False
        while not stopping:
            first = await self.queue.get()
            if first is None:
                break
            self.writing = True
            pending, stopping = await self._gather(first)
            await self._flush(pending)
            self.writing = False

    async def _gather(self, first: AcceptedBatch) -> tuple[list[AcceptedBatch], bool]:
        """Take the queued batches up to `batch_max_points`; tell if stop was queued."""
        pending = [first]
        points = first.points
        delay_s = self._settings.batch_max_delay_ms / 1000
        deadline = time.monotonic() + delay_s
        while points < self._settings.batch_max_points:
            try:
                if self.queue.empty() and delay_s > 0:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                else:
                    item = self.queue.get_nowait()
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if item is None:
                return pending, True
            pending.append(item)
            points += item.points
        return pending, False

    def _write_points(
        self, pending: list[AcceptedBatch], loop: asyncio.AbstractEventLoop
    ) -> int:
        """Store the points of `pending` and return how many were new.

        Runs in a worker thread and sends the `points` event at once, so live
        views need not wait for the registry and sequence state.
        """
        blocks = [block for item in pending for block in item.blocks]
        stored = self._store.write(blocks)
        if self._hub.subscribers:
            event = Event("points", {"points": points_event(blocks)})
            loop.call_soon_threadsafe(self._hub.publish, event)
        return stored

    def _write_state(self, pending: list[AcceptedBatch]) -> None:
        """Register new sensors and store the sequence state (in a worker thread)."""
        refs = [ref for item in pending for ref in item.new_sensors]
        if refs:
            self._registry.ensure_sensors(refs)
        self._store.set_state(
            self._states.stored((item.gateway_key, item.seq) for item in pending)
        )

    async def _retry(self, description: str, work: Callable[[], _T]) -> _T:
        """Run `work` in a worker thread until it raises no StorageError."""
        backoff = Backoff(base_s=0.2, cap_s=10.0)
        while True:
            try:
                return await asyncio.to_thread(work)
            except StorageError:
                self._stats.write_failures += 1
                delay = backoff.next_delay()
                logger.exception("%s failed; retrying in %.1f s", description, delay)
                await asyncio.sleep(delay)

    async def _flush(self, pending: list[AcceptedBatch]) -> None:
        loop = asyncio.get_running_loop()
        description = f"write of {len(pending)} batches"
        stored = await self._retry(
            description, lambda: self._write_points(pending, loop)
        )
        self._stats.writes += 1
        self._stats.points_stored += stored
        await self._retry(
            f"sensor and sequence state {description}",
            lambda: self._write_state(pending),
        )
        # Only now, with points and sequence state stored, may the broker
        # forget the messages.
        for item in pending:
            self._ack(item.delivery)
        logger.debug("stored %d new points from %d batches", stored, len(pending))


def points_event(blocks: list[PointsBlock]) -> list[dict[str, object]]:
    """Return the body of a `points` event: one object per point."""
    out: list[dict[str, object]] = []
    for block in blocks:
        name = block.series.name
        stamps = block.timestamps.astype(np.int64).tolist()
        values = block.values.astype(np.float64).tolist()
        out.extend(
            {"series": name, "timestamp": ts, "value": value}
            for ts, value in zip(stamps, values, strict=True)
        )
    return out
