"""The time-series store interface and the value objects that cross it.

Timestamps are integer milliseconds since the Unix epoch (UTC) throughout.
Implementations are synchronous and thread-safe; async callers run them in a
worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class SeriesMeta:
    """Identity and description of one series."""

    name: str
    """Dotted Graphite-style name, `<tenant>.<site>.<gateway>.<device>.<quantity>`."""
    tenant: str
    site: str
    gateway: str
    device: str
    quantity: str
    unit: str
    step_s: int = 60
    """Nominal seconds between points; /render buckets the series at this step."""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PointsBlock:
    """Points of one series to write, timestamps ascending or not."""

    series: SeriesMeta
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.timestamps.shape != self.values.shape:
            raise ValueError(
                f"series {self.series.name}: {self.timestamps.shape[0]} timestamps "
                f"but {self.values.shape[0]} values"
            )


@dataclass(frozen=True, slots=True)
class SeriesData:
    """Points of one series read back, ordered by timestamp."""

    series: SeriesMeta
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    resolution_s: int = 0
    """0 for raw points, else the rollup step; rollup timestamps start buckets."""


# Aggregations a BucketReader computes, by graphite-web's canonical names.
BUCKET_FUNCS = ("average", "sum", "min", "max", "first", "last", "count")


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """How to aggregate stored points into `count` buckets of equal width.

    The points with start_ms <= t < end_ms of one archive are first placed in
    slots of `slot_s` seconds from the epoch, where the latest point of a
    slot wins, as a series' grid is built. Bucket i then aggregates the slots
    starting in [origin_ms + i * bucket_s * 1000, origin_ms + (i + 1) *
    bucket_s * 1000) with `func`, skipping NaN values.
    """

    start_ms: int
    end_ms: int
    resolution_s: int
    """Archive to read: 0 for raw points, else a rollup step."""
    slot_s: int
    origin_ms: int
    """Start of bucket 0; a multiple of slot_s and not after start_ms."""
    bucket_s: int
    """Bucket width, a multiple of slot_s."""
    count: int
    func: str
    """One of BUCKET_FUNCS."""

    def __post_init__(self) -> None:
        slot_ms = self.slot_s * 1000
        if self.slot_s <= 0 or self.bucket_s <= 0 or self.bucket_s % self.slot_s:
            raise ValueError(
                f"bucket width {self.bucket_s}s must be a positive multiple of "
                f"the slot width {self.slot_s}s"
            )
        if self.origin_ms % slot_ms or self.origin_ms > self.start_ms:
            raise ValueError(
                f"bucket origin {self.origin_ms} must be a multiple of "
                f"{slot_ms} ms and not after the read start {self.start_ms}"
            )
        if self.func not in BUCKET_FUNCS:
            raise ValueError(
                f"invalid bucket function {self.func!r}: use one of "
                f"{', '.join(BUCKET_FUNCS)}"
            )


@dataclass(frozen=True, slots=True)
class BucketValues:
    """The bucket aggregates of one series: `count` values, NaN where empty."""

    series: SeriesMeta
    values: npt.NDArray[np.float64]


@runtime_checkable
class BucketReader(Protocol):
    """A store that aggregates points into buckets itself, so fewer rows leave it."""

    def read_buckets(
        self, names: Sequence[str], spec: BucketSpec
    ) -> list[BucketValues] | None:
        """Return the bucket aggregates of each known named series, in order.

        The values equal placing the points in slots (latest wins) and then
        aggregating the non-NaN slot values per bucket. Sums and averages may
        differ in the last bits, because the store adds in its own order.
        None means the store cannot aggregate (a wrapper around a store that
        does not), so the caller reads the points instead.
        """
        ...


@dataclass(frozen=True, slots=True)
class LatestValue:
    """The newest point of a series."""

    series: SeriesMeta
    timestamp: int
    value: float


class TimeSeriesStore(Protocol):
    """The store operations the collector, the query engine and the API use."""

    def write(self, blocks: Sequence[PointsBlock]) -> int:
        """Store all blocks in one transaction and return the points newly added.

        The last value written for a (series, timestamp) wins, as in carbon, so
        a redelivered batch leaves the stored data as it was.
        """
        ...

    def register(self, metas: Sequence[SeriesMeta]) -> npt.NDArray[np.int32]:
        """Return the store's id of each series, registering new ones."""
        ...

    def append(
        self,
        series_ids: npt.NDArray[np.int32],
        timestamps: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> int:
        """Store points given as columns, for bulk ingest; return how many.

        Ids come from `register`. The last value written for a (series,
        timestamp) wins, also within one call. Unlike `write`, the count
        includes points that replace stored ones.
        """
        ...

    def read(
        self,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        resolution_s: int | None = 0,
    ) -> list[SeriesData]:
        """Return the points of each named series with start_ms <= t < end_ms.

        `resolution_s` picks the archive: 0 reads raw points, a rollup step
        reads that rollup (one value per bucket, stamped with the bucket
        start), and None picks per series the finest archive that covers
        start_ms, as `resolution_for` does. Each result's `resolution_s`
        names the archive it came from, so a caller places the values on a
        grid of max(series step, resolution_s). Unknown names are left out.
        """
        ...

    def resolution_for(
        self, name: str, start_ms: int, now_ms: int | None = None
    ) -> int:
        """Return the finest archive of a series that still contains start_ms.

        0 means raw points. A series whose retention rule has no archive
        reaching back that far gets its coarsest rollup, as whisper does.
        """
        ...

    def find(self, pattern: str) -> list[SeriesMeta]:
        """Return the series whose names match a Graphite glob, sorted by name."""
        ...

    def series(
        self, names: Sequence[str] | None = None, prefix: str = ""
    ) -> list[SeriesMeta]:
        """Return the metadata of the named series, or of all series.

        Without `names`, only series whose names start with `prefix` are
        returned, sorted by name.
        """
        ...

    def latest(self, names: Sequence[str] | None = None) -> list[LatestValue]:
        """Return the newest point of each named series, or of all series."""
        ...

    def get_state(self, key: str) -> str | None:
        """Return a small value the collector keeps across restarts."""
        ...

    def set_state(self, items: Mapping[str, str]) -> None:
        """Store small values the collector keeps across restarts."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...
