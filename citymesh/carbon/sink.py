"""Turn parsed carbon points into series and write them to the store in bulk."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from citymesh.carbon.names import InvalidName, parse_name
from citymesh.carbon.parse import INVALID_NAME, ParsedPoints
from citymesh.errors import StorageError
from citymesh.storage.base import SeriesMeta, TimeSeriesStore
from citymesh.storage.retention import RetentionRules

logger = logging.getLogger(__name__)

# Distinct senders and reasons remembered for "first rejection" logging; past
# it, new pairs are counted but not logged, so a scan cannot flood the log.
LOGGED_MAX = 10_000
# Rejected paths remembered, so a sender repeating one does not cost a check.
INVALID_CACHE_MAX = 100_000
# Default step of a carbon series whose name no retention schema matches.
DEFAULT_STEP_S = 60
WRITE_RETRY_S = 1.0


@dataclass(slots=True)
class CarbonStats:
    """Running totals since the listener started."""

    connections: int = 0
    lines_received: int = 0
    points_accepted: int = 0
    points_stored: int = 0
    """Points written, counting those that replace a stored value."""
    writes: int = 0
    write_failures: int = 0
    dropped: int = 0
    """Points of UDP datagrams dropped while the write queue was full."""
    rejected: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as plain JSON-ready values."""
        return {
            "connections": self.connections,
            "lines_received": self.lines_received,
            "points_accepted": self.points_accepted,
            "points_stored": self.points_stored,
            "writes": self.writes,
            "write_failures": self.write_failures,
            "dropped": self.dropped,
            "rejected": dict(self.rejected),
            "rejected_total": sum(self.rejected.values()),
        }


@dataclass(frozen=True, slots=True)
class _Item:
    sender: str
    parsed: ParsedPoints


class CarbonSink:
    """Queue of parsed points and the task that writes them.

    Paths are resolved to series ids in the writer thread, so the event loop
    only splits lines. New series get `tenant`, the name `prefix + path`,
    empty site, gateway, device, quantity and unit, the first archive's step
    of their retention schema, and their Graphite tags.
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        tenant: str,
        prefix: str = "",
        queue_max_points: int = 2_000_000,
        rules: RetentionRules | None = None,
    ) -> None:
        self._store = store
        self._tenant = tenant
        self._prefix = prefix
        self._rules = rules or RetentionRules()
        self.queue_max_points = queue_max_points
        self.stats = CarbonStats()
        self._ids: dict[bytes, int] = {}
        self._invalid: dict[bytes, str] = {}
        self._logged: set[tuple[str, str]] = set()
        self._queue: list[_Item] = []
        self._queued_points = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._resume: list[Callable[[], None]] = []
        self._closing = False

    @property
    def full(self) -> bool:
        """Whether the queue holds queue_max_points or more."""
        return self._queued_points >= self.queue_max_points

    def submit(self, sender: str, parsed: ParsedPoints) -> None:
        """Count the rejections of a parsed buffer and queue its points."""
        self.note_rejections(sender, parsed)
        if parsed.paths:
            self._queue.append(_Item(sender, parsed))
            self._queued_points += len(parsed.paths)
            self._idle.clear()
            self._wakeup.set()

    def when_drained(self, resume: Callable[[], None]) -> None:
        """Call `resume` once the queue is below half its limit."""
        self._resume.append(resume)

    def note_rejections(self, sender: str, parsed: ParsedPoints) -> None:
        """Count rejections and log the first of each reason from each sender."""
        for reason, count in parsed.rejected.items():
            self.stats.rejected[reason] += count
            key = (sender, reason)
            if key in self._logged or len(self._logged) >= LOGGED_MAX:
                continue
            self._logged.add(key)
            logger.warning(
                "rejected carbon input from %s: %s, e.g. %r (later ones are only "
                "counted)",
                sender,
                reason,
                parsed.samples.get(reason, b"")[:200],
            )

    async def run(self) -> None:
        """Write queued points until `close`, retrying failed writes."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._queue:
                self._idle.set()
                if self._closing:
                    return
                continue
            items, self._queue = self._queue, []
            count = sum(len(item.parsed.paths) for item in items)
            while True:
                try:
                    stored = await asyncio.to_thread(self._write, items)
                    break
                except StorageError:
                    self.stats.write_failures += 1
                    logger.exception(
                        "carbon write of %d points failed; retrying in %.1f s",
                        count,
                        WRITE_RETRY_S,
                    )
                    await asyncio.sleep(WRITE_RETRY_S)
            self._queued_points -= count
            self.stats.writes += 1
            self.stats.points_stored += stored
            if self._queued_points <= self.queue_max_points // 2:
                resume, self._resume = self._resume, []
                for callback in resume:
                    callback()
            self._wakeup.set()

    async def close(self) -> None:
        """Write what is queued, then let `run` return."""
        self._closing = True
        self._wakeup.set()

    async def wait_idle(self) -> None:
        """Wait until everything submitted so far is written."""
        await self._idle.wait()

    def _write(self, items: list[_Item]) -> int:
        """Resolve paths to series ids and append all items in one store call."""
        found = [self._lookup(item.parsed.paths) for item in items]
        self._register_missing(items, found)
        ids_parts, stamps_parts, values_parts = [], [], []
        for item, ids in zip(items, found, strict=True):
            keep = ids > 0
            if not keep.all():
                ids = ids[keep]
                stamps = item.parsed.timestamps_ms[keep]
                values = item.parsed.values[keep]
            else:
                stamps, values = item.parsed.timestamps_ms, item.parsed.values
            ids_parts.append(ids)
            stamps_parts.append(stamps)
            values_parts.append(values)
        ids = np.concatenate(ids_parts)
        self.stats.points_accepted += int(ids.size)
        return self._store.append(
            ids, np.concatenate(stamps_parts), np.concatenate(values_parts)
        )

    def _lookup(self, paths: list[bytes]) -> np.ndarray[Any, np.dtype[np.int32]]:
        """Return the known id of each path, 0 for a path not registered yet."""
        get = self._ids.get
        return np.fromiter((get(path, 0) for path in paths), np.int32, len(paths))

    def _register_missing(
        self, items: list[_Item], found: list[np.ndarray[Any, np.dtype[np.int32]]]
    ) -> None:
        """Register the new paths of all items in one store call; fill their ids.

        One call per write batch matters for a backfill, where every few
        thousand lines start a new series and each call is a transaction.
        """
        new: dict[bytes, SeriesMeta] = {}
        missing_by_item: list[tuple[int, np.ndarray[Any, np.dtype[np.intp]]]] = []
        for index, (item, ids) in enumerate(zip(items, found, strict=True)):
            if ids.all():
                continue
            missing = np.flatnonzero(ids == 0)
            missing_by_item.append((index, missing))
            bad = ParsedPoints.empty()
            paths = item.parsed.paths
            for position in missing.tolist():
                path = paths[position]
                if path in new:
                    continue
                reason = self._invalid.get(path)
                if reason is None:
                    try:
                        new[path] = self._meta(path)
                        continue
                    except InvalidName as exc:
                        reason = str(exc)
                        if len(self._invalid) < INVALID_CACHE_MAX:
                            self._invalid[path] = reason
                bad.reject(INVALID_NAME, path)
            if bad.rejected:
                self.note_rejections(item.sender, bad)
        if not new:
            return
        registered = self._store.register(list(new.values()))
        for path, series_id in zip(new, registered.tolist(), strict=True):
            self._ids[path] = series_id
        for index, missing in missing_by_item:
            paths = items[index].parsed.paths
            found[index][missing] = [
                self._ids.get(paths[position], 0) for position in missing.tolist()
            ]

    def _meta(self, path: bytes) -> SeriesMeta:
        metric = parse_name(path)
        name = self._prefix + metric.series_name
        archives = self._rules.policy(name).archives
        return SeriesMeta(
            name=name,
            tenant=self._tenant,
            site="",
            gateway="",
            device="",
            quantity="",
            unit="",
            step_s=archives[0].step_s if archives else DEFAULT_STEP_S,
            tags=metric.tags,
        )
