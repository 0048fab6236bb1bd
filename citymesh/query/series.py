"""Regular time series and the fetch step that builds them from stored points.

Bucketing follows whisper 1.1: a point at `t` seconds belongs to the bucket
starting at `floor(t / step) * step`. When several points fall into one bucket,
the latest one (largest timestamp) wins. Buckets without points are null (NaN).

Boundaries for a request from `from` to `until` (epoch seconds) are whisper's,
so that Grafana users get graphite-web's exact answers:

* the first bucket is the one after the bucket containing `from`:
  `floor(from / step) * step + step`;
* the last bucket is the one containing `until`, so the grid ends at
  `floor(until / step) * step + step` (exclusive).

A point written exactly at an aligned `from` is therefore left out and one
written exactly at `until` is included, as in graphite-web.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from citymesh.errors import QueryError
from citymesh.query.aggregation import FloatArray, aggregate_buckets
from citymesh.storage.base import SeriesData, SeriesMeta, TimeSeriesStore

logger = logging.getLogger(__name__)

TagValue = str | int | float | bool

# Upper bound on the buckets of one series in one request: 1,000,000 float64
# values are 8 MB, and at a 60 s step they cover about 1.9 years. It stops a
# long range or a tiny interval from exhausting memory.
MAX_POINTS = 1_000_000


def check_point_count(count: int, what: str) -> None:
    """Raise QueryError when `what` would hold more than MAX_POINTS buckets."""
    if count > MAX_POINTS:
        raise QueryError(
            f"{what} would hold {count} points, more than the limit of "
            f"{MAX_POINTS}; request a shorter time range or a longer interval"
        )


@dataclass(frozen=True, slots=True, eq=False)
class TimeSeries:
    """Values on a regular grid: `values[i]` is the bucket at `start + i * step`.

    `end` is exclusive and equals `start + len(values) * step`. The values
    array is copied on construction and made read-only.
    """

    name: str
    path_expression: str
    start: int
    end: int
    step: int
    values: FloatArray
    tags: Mapping[str, TagValue] = field(default_factory=dict)
    consolidation_func: str = "average"
    """Aggregation used when the series is consolidated to a coarser step."""

    def __post_init__(self) -> None:
        values = np.array(self.values, dtype=np.float64).reshape(-1)
        values.setflags(write=False)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "tags", dict(self.tags))
        if self.step <= 0:
            raise ValueError(f"series {self.name}: step must be positive")
        if self.end != self.start + values.size * self.step:
            raise ValueError(
                f"series {self.name}: end {self.end} does not match start "
                f"{self.start} + {values.size} values * step {self.step}"
            )

    def __len__(self) -> int:
        return int(self.values.size)

    @property
    def timestamps(self) -> npt.NDArray[np.int64]:
        """Bucket start times in epoch seconds, one per value."""
        return self.start + self.step * np.arange(self.values.size, dtype=np.int64)

    def derive(self, **changes: object) -> TimeSeries:
        """Return a copy with the given fields replaced."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def grid_bounds(from_s: int, until_s: int, step: int) -> tuple[int, int]:
    """Return whisper's [start, end) bucket grid in seconds for (from_s, until_s]."""
    start = from_s // step * step + step
    end = until_s // step * step + step
    return start, max(end, start)


def bucket_points(data: SeriesData, start: int, end: int, step: int) -> FloatArray:
    """Place raw millisecond points on the grid [start, end) with latest-wins."""
    count = (end - start) // step
    values = np.full(count, np.nan)
    if data.timestamps.size == 0:
        return values
    order = np.argsort(data.timestamps, kind="stable")
    stamps = data.timestamps[order]
    points = data.values[order]
    index = stamps // (step * 1000) - start // step
    inside = (index >= 0) & (index < count)
    index = index[inside]
    points = points[inside]
    if index.size == 0:
        return values
    # Timestamps are sorted, so the last entry of each run of equal bucket
    # indexes is the latest point of that bucket.
    is_last = np.append(index[1:] != index[:-1], True)
    values[index[is_last]] = points[is_last]
    return values


def series_tags(meta: SeriesMeta) -> dict[str, TagValue]:
    """Return the Graphite tags of a stored series: its tags plus `name`."""
    tags: dict[str, TagValue] = dict(meta.tags)
    # A tagged Graphite name `cpu;host=a` has the `name` tag `cpu`.
    tags["name"] = meta.name.split(";", 1)[0]
    return tags


def fetch_series(
    store: TimeSeriesStore, pattern: str, from_s: int, until_s: int
) -> list[TimeSeries]:
    """Read the series matching a glob and bucket them for (from_s, until_s].

    Each series keeps its own `meta.step_s`. Series that exist but have no
    points in the range come back with all values null. Tagged series
    (`name;tag=value`) are left out unless the pattern names a tag, as
    graphite-web keeps them out of the metric tree.
    """
    return fetch_metas(store, find_metas(store, pattern), pattern, from_s, until_s)


def find_metas(store: TimeSeriesStore, pattern: str) -> list[SeriesMeta]:
    """Return the series matching a path; tagged ones only if the path has a tag."""
    metas = store.find(pattern)
    if ";" not in pattern:
        metas = [meta for meta in metas if ";" not in meta.name]
    return metas


def series_step(
    store: TimeSeriesStore, meta: SeriesMeta, from_s: int
) -> tuple[int, int]:
    """Return the (step, archive) at which a fetch from `from_s` reads a series."""
    # Like graphite-web over whisper, a range that reaches past the raw
    # retention is read from the finest rollup still holding its start.
    resolution = store.resolution_for(meta.name, from_s * 1000)
    return max(meta.step_s, resolution), resolution


def fetch_metas(
    store: TimeSeriesStore,
    metas: Sequence[SeriesMeta],
    path_expression: str,
    from_s: int,
    until_s: int,
) -> list[TimeSeries]:
    """Read the given series and bucket them for (from_s, until_s]."""
    by_step: dict[tuple[int, int], list[SeriesMeta]] = {}
    for meta in metas:
        by_step.setdefault(series_step(store, meta, from_s), []).append(meta)

    built: dict[str, TimeSeries] = {}
    for (step, resolution), group in by_step.items():
        start, end = grid_bounds(from_s, until_s, step)
        check_point_count(
            (end - start) // step, f"series {path_expression} at step {step}s"
        )
        names = [meta.name for meta in group]
        data_by_name = {
            data.series.name: data
            for data in store.read(names, start * 1000, end * 1000, resolution)
        }
        for meta in group:
            data = data_by_name.get(meta.name)
            if data is None:
                values = np.full((end - start) // step, np.nan)
            else:
                values = bucket_points(data, start, end, step)
            built[meta.name] = TimeSeries(
                name=meta.name,
                path_expression=path_expression,
                start=start,
                end=end,
                step=step,
                values=values,
                tags=series_tags(meta),
            )
    logger.debug("fetched %d series for %s", len(built), path_expression)
    return [built[meta.name] for meta in metas]


def consolidate_values(values: FloatArray, per_point: int, func: str) -> FloatArray:
    """Aggregate runs of `per_point` values from the first one, as graphite-web.

    The last run may be shorter. A run without non-null values is null.
    `avg_zero` counts nulls as zeros.
    """
    if per_point <= 1:
        return values
    count = -(-values.size // per_point)
    buckets = np.arange(values.size, dtype=np.int64) // per_point
    if func == "avg_zero":
        totals = aggregate_buckets(values, buckets, count, "sum")
        sizes = np.bincount(buckets, minlength=count)
        return totals / sizes
    return aggregate_buckets(values, buckets, count, func)


def normalize(
    series_list: Sequence[TimeSeries],
) -> tuple[FloatArray, int, int]:
    """Bring series onto one step for combining, point by point, as graphite-web.

    Each series is consolidated to the least common multiple of all steps by
    runs of points from its own start. Rows are then combined by position,
    padded with nulls at the end, as graphite-web's `normalize` and
    `zip_longest` do. Returns the (series x points) matrix, the earliest
    start and the common step.
    """
    step = math.lcm(*(series.step for series in series_list))
    rows = [
        consolidate_values(s.values, step // s.step, s.consolidation_func)
        for s in series_list
    ]
    start = min(series.start for series in series_list)
    end = max(series.end for series in series_list)
    end -= (end - start) % step
    width = max(row.size for row in rows)
    # graphite-web zips the values with range(start, end + 1, step).
    width = min(width, (end - start) // step + 1)
    matrix = np.full((len(rows), width), np.nan)
    for index, row in enumerate(rows):
        size = min(row.size, width)
        matrix[index, :size] = row[:size]
    return matrix, start, step
