"""Views of the store and the event stream limited to what one caller may read."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from citymesh.collector.events import Event
from citymesh.errors import StorageError
from citymesh.registry.access import ReadAccess
from citymesh.storage.base import (
    BucketReader,
    BucketSpec,
    BucketValues,
    LatestValue,
    PointsBlock,
    SeriesData,
    SeriesMeta,
    TimeSeriesStore,
)

logger = logging.getLogger(__name__)


class ScopedStore:
    """A read-only TimeSeriesStore that hides every series the caller may not read.

    Globs, listings and reads are filtered alike, so a wildcard in /render or
    /metrics/find never reveals that a hidden series exists.
    """

    def __init__(self, inner: TimeSeriesStore, access: ReadAccess) -> None:
        self._inner = inner
        self._access = access

    def _readable(self, names: Sequence[str]) -> list[str]:
        return [n for n in names if self._access.can_read(n)]

    def write(self, blocks: Sequence[PointsBlock]) -> int:
        """Reject writes: the view is read-only."""
        raise StorageError("the API's view of the store is read-only")

    def register(self, metas: Sequence[SeriesMeta]) -> npt.NDArray[np.int32]:
        """Reject registration: the view is read-only."""
        raise StorageError("the API's view of the store is read-only")

    def append(
        self,
        series_ids: npt.NDArray[np.int32],
        timestamps: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> int:
        """Reject writes: the view is read-only."""
        raise StorageError("the API's view of the store is read-only")

    def read(
        self,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        resolution_s: int | None = 0,
    ) -> list[SeriesData]:
        """Return the points of the readable series among `names`."""
        return self._inner.read(self._readable(names), start_ms, end_ms, resolution_s)

    def read_buckets(
        self, names: Sequence[str], spec: BucketSpec
    ) -> list[BucketValues] | None:
        """Aggregate the readable series among `names`, if the inner store can."""
        if not isinstance(self._inner, BucketReader):
            return None
        return self._inner.read_buckets(self._readable(names), spec)

    def resolution_for(
        self, name: str, start_ms: int, now_ms: int | None = None
    ) -> int:
        """Return the finest archive of a readable series that holds start_ms."""
        if not self._access.can_read(name):
            return 0
        return self._inner.resolution_for(name, start_ms, now_ms)

    def find(self, pattern: str) -> list[SeriesMeta]:
        """Return the readable series matching a Graphite glob."""
        return [m for m in self._inner.find(pattern) if self._access.can_read(m.name)]

    def series(
        self, names: Sequence[str] | None = None, prefix: str = ""
    ) -> list[SeriesMeta]:
        """Return the metadata of readable series."""
        if names is not None:
            return self._inner.series(self._readable(names))
        return [
            m
            for m in self._inner.series(prefix=prefix)
            if self._access.can_read(m.name)
        ]

    def latest(self, names: Sequence[str] | None = None) -> list[LatestValue]:
        """Return the newest point of each readable series."""
        if names is not None:
            return self._inner.latest(self._readable(names))
        return [v for v in self._inner.latest() if self._access.can_read(v.series.name)]

    def get_state(self, key: str) -> str | None:
        """Return nothing: the collector's state is not for API callers."""
        return None

    def set_state(self, items: Mapping[str, str]) -> None:
        """Reject writes: the view is read-only."""
        raise StorageError("the API's view of the store is read-only")

    def close(self) -> None:
        """Leave the shared store open; the data centre closes it."""


def visible_event(access: ReadAccess, event: Event) -> Event | None:
    """Return the part of a live event the caller may see, or None."""
    if event.name == "points":
        points = [
            p
            for p in event.data.get("points", [])
            if isinstance(p, dict) and access.can_read(str(p.get("series", "")))
        ]
        if not points:
            return None
        return Event(event.name, {**event.data, "points": points})
    if event.name == "gateway":
        whole = access.whole_tenants()
        tenant = str(event.data.get("tenant", ""))
        return event if whole is None or tenant in whole else None
    return event
