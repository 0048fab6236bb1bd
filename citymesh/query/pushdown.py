"""Aggregations computed by the store instead of over fetched points.

When the store is a BucketReader, `summarize` over a path and maxDataPoints
consolidation of paths read one value per output bucket from the store
instead of every stored point. Each plan here computes the same buckets as
fetching the series and then running the in-Python function. A plan returns
None when that cannot be shown, and the caller takes the in-Python path:
another function between the call and the path, a bucket that is not a
whole number of steps, or an aggregation the store lacks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from citymesh.query.aggregation import AGGREGATION_ALIASES
from citymesh.query.grammar import Call, Node, PathExpression
from citymesh.query.registry import EvalContext, FunctionSpec, bind_arguments
from citymesh.query.series import (
    TimeSeries,
    check_point_count,
    fetch_metas,
    find_metas,
    grid_bounds,
    series_step,
    series_tags,
)
from citymesh.query.timeparse import parse_interval
from citymesh.query.transform import consolidate_by
from citymesh.storage.base import (
    BUCKET_FUNCS,
    BucketReader,
    BucketSpec,
    SeriesMeta,
)

logger = logging.getLogger(__name__)


def _bucket_func(name: str) -> str | None:
    """Return the store's name for a Graphite aggregation, or None if it has none."""
    canonical = AGGREGATION_ALIASES.get(name)
    return canonical if canonical in BUCKET_FUNCS else None


def _fetch_until(context: EvalContext) -> int:
    """Return the end of a path fetch: the request end, clipped at `now`."""
    if context.now is None:
        return context.until_s
    return min(context.until_s, context.now)


def _read_values(
    store: BucketReader, metas: Sequence[SeriesMeta], spec: BucketSpec
) -> dict[str, npt.NDArray[np.float64]] | None:
    """Read the buckets of the given series, all NaN for a series the store lacks.

    Returns None when the store cannot aggregate.
    """
    read = store.read_buckets([meta.name for meta in metas], spec)
    if read is None:
        return None
    by_name = {item.series.name: item.values for item in read}
    empty = np.full(spec.count, np.nan)
    return {meta.name: by_name.get(meta.name, empty) for meta in metas}


def summarize(
    spec: FunctionSpec, context: EvalContext, call: Call
) -> list[TimeSeries] | None:
    """Compute `summarize(path, ...)` in the store, or return None.

    Matches windows.summarize over fetch_series when every matched series'
    step divides the interval, so each bucket contains whole steps.
    """
    store = context.store
    if not isinstance(store, BucketReader):
        return None
    bound, nodes = bind_arguments(spec, call, context, evaluate_series=False)
    path = nodes.get("seriesList")
    func = _bucket_func(bound["func"])
    if not isinstance(path, PathExpression) or func is None:
        return None
    interval_string: str = bound["interval_string"]
    align_to_from: bool = bound["align_to_from"]
    func_text: str = bound["func"]
    interval = parse_interval(interval_string)
    from_s, until_s = context.from_s, _fetch_until(context)
    if until_s <= from_s:
        return []
    metas = find_metas(store, path.path)
    plans: dict[BucketSpec, list[SeriesMeta]] = {}
    for meta in metas:
        step, resolution = series_step(store, meta, from_s)
        if interval % step:
            return None
        start, end = grid_bounds(from_s, until_s, step)
        if align_to_from:
            first, last = start, end
        else:
            first = start - start % interval
            last = end - end % interval + interval
        count = max(0, -(-(last - first) // interval))
        check_point_count(count, f"summarize of {meta.name}")
        bucket_spec = BucketSpec(
            start_ms=start * 1000,
            end_ms=end * 1000,
            resolution_s=resolution,
            slot_s=step,
            origin_ms=first * 1000,
            bucket_s=interval,
            count=count,
            func=func,
        )
        plans.setdefault(bucket_spec, []).append(meta)

    built: dict[str, TimeSeries] = {}
    suffix = ", true" if align_to_from else ""
    for bucket_spec, group in plans.items():
        first = bucket_spec.origin_ms // 1000
        values_by_name = _read_values(store, group, bucket_spec)
        if values_by_name is None:
            return None
        for meta in group:
            name = f'summarize({meta.name}, "{interval_string}", "{func_text}"{suffix})'
            tags = {
                **series_tags(meta),
                "summarize": interval_string,
                "summarizeFunction": func_text,
            }
            values = values_by_name[meta.name]
            built[meta.name] = TimeSeries(
                name=name,
                path_expression=name,
                start=first,
                end=first + values.size * interval,
                step=interval,
                values=values,
                tags=tags,
            )
    logger.debug("summarized %d series of %s in the store", len(built), path.path)
    return [built[meta.name] for meta in metas]


@dataclass(frozen=True, slots=True)
class _DisplayItem:
    """One series of a maxDataPoints request: its path, grid and consolidation."""

    meta: SeriesMeta
    path: str
    func: str
    """Consolidation function as the target names it."""
    wrapped: bool
    """Whether the target is consolidateBy(path, func) instead of a bare path."""
    step: int
    resolution: int
    start: int
    end: int


def _display_targets(
    context: EvalContext, nodes: Sequence[Node]
) -> list[tuple[str, str, bool]] | None:
    """Return (path, function, wrapped) per target, or None unless all are paths."""
    targets = []
    for node in nodes:
        if isinstance(node, PathExpression):
            targets.append((node.path, "average", False))
            continue
        if not isinstance(node, Call) or node.name != "consolidateBy":
            return None
        # Imported here because the function catalog imports this module.
        from citymesh.query.functions import FUNCTIONS

        spec = FUNCTIONS[node.name]
        bound, args = bind_arguments(spec, node, context, evaluate_series=False)
        path = args.get("seriesList")
        if not isinstance(path, PathExpression):
            return None
        targets.append((path.path, bound["consolidation_func"], True))
    return targets


def consolidate_paths(
    context: EvalContext, nodes: Sequence[Node], max_data_points: int
) -> list[TimeSeries] | None:
    """Fetch paths consolidated to about max_data_points values, or return None.

    Matches render.consolidate_for_display over the fetched series for
    targets that are paths or consolidateBy(path, func), so a long range of
    fine data is read as one value per output point and is not rejected by
    the point limit of a fetch.
    """
    store = context.store
    if not isinstance(store, BucketReader):
        return None
    targets = _display_targets(context, nodes)
    if targets is None:
        return None
    if any(_bucket_func(func) is None for _, func, _ in targets):
        return None
    from_s, until_s = context.from_s, _fetch_until(context)
    if until_s <= from_s:
        return []
    items = []
    for path, func, wrapped in targets:
        for meta in find_metas(store, path):
            step, resolution = series_step(store, meta, from_s)
            start, end = grid_bounds(from_s, until_s, step)
            items.append(
                _DisplayItem(meta, path, func, wrapped, step, resolution, start, end)
            )
    if not items:
        return []
    time_range = max(item.end for item in items) - min(item.start for item in items)
    plans: dict[BucketSpec, list[int]] = {}
    results: list[TimeSeries | None] = [None] * len(items)
    for index, item in enumerate(items):
        if max_data_points > 1 and max_data_points >= time_range / item.step:
            # Few enough points: the series is shown as fetched.
            fetched = fetch_metas(store, [item.meta], item.path, from_s, until_s)
            results[index] = _named(context, fetched[0], item)
            continue
        bucket_spec, first = _display_spec(item, time_range, max_data_points)
        plans.setdefault(bucket_spec, []).append(index)
        results[index] = _named(
            context,
            TimeSeries(
                name=item.meta.name,
                path_expression=item.path,
                start=first,
                end=first + bucket_spec.count * bucket_spec.bucket_s,
                step=bucket_spec.bucket_s,
                values=np.full(bucket_spec.count, np.nan),
                tags=series_tags(item.meta),
            ),
            item,
        )
    for bucket_spec, indexes in plans.items():
        if bucket_spec.count == 0:
            continue
        values = _read_values(store, [items[i].meta for i in indexes], bucket_spec)
        if values is None:
            return None
        for index in indexes:
            placeholder = results[index]
            assert placeholder is not None
            results[index] = placeholder.derive(values=values[items[index].meta.name])
    logger.debug("consolidated %d series in the store", len(items))
    return [series for series in results if series is not None]


def _display_spec(
    item: _DisplayItem, time_range: int, max_data_points: int
) -> tuple[BucketSpec, int]:
    """Return the buckets of one consolidated series and its first timestamp.

    As graphite-web 1.1.10's JSON renderer, the series start moves to the
    next multiple of the run length, but only run - 1 leading values are
    dropped, so bucket i starts one step before its timestamp.
    """
    step, start, end = item.step, item.start, item.end
    size = (end - start) // step
    if max_data_points == 1:
        per_point, first, dropped = max(size, 1), start, 0
    else:
        per_point = math.ceil(time_range / step / max_data_points)
        seconds = per_point * step
        nudge = seconds + start % step - start % seconds
        first = start + nudge
        dropped = max(nudge // step - 1, 0)
    seconds = per_point * step
    runs = -(-max(size - dropped, 0) // per_point)
    count = min(runs, max(0, (end - first) // seconds + 1))
    check_point_count(count, f"series {item.meta.name} at step {seconds}s")
    origin = start + dropped * step
    bucket_spec = BucketSpec(
        start_ms=origin * 1000,
        end_ms=end * 1000,
        resolution_s=item.resolution,
        slot_s=step,
        origin_ms=origin * 1000,
        bucket_s=seconds,
        count=count,
        func=_bucket_func(item.func) or "average",
    )
    return bucket_spec, first


def _named(context: EvalContext, series: TimeSeries, item: _DisplayItem) -> TimeSeries:
    """Apply the target's consolidateBy naming to a fetched path series."""
    if not item.wrapped:
        return series
    return consolidate_by(context, [series], item.func)[0]
