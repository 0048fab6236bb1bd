"""Graphite render functions and the registry that maps names to them.

Result names, tags and null handling follow graphite-web 1.1: combining
functions skip nulls and return null only where every input is null. Series
with different steps are combined at the least common multiple of their steps,
with buckets aligned to multiples of that step. To add a function, write it
with the signature `(context, **arguments)` and add a FunctionSpec to
FUNCTIONS.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from citymesh.errors import QueryError
from citymesh.query.aggregation import (
    FloatArray,
    aggregate_buckets,
    aggregate_columns,
)
from citymesh.query.grammar import first_path_expression
from citymesh.query.registry import EvalContext, FunctionSpec, Param, ParamType
from citymesh.query.series import (
    TagValue,
    TimeSeries,
    check_point_count,
    normalize,
)
from citymesh.query.timeparse import parse_interval

logger = logging.getLogger(__name__)


def format_path_expressions(series_list: Sequence[TimeSeries]) -> str:
    """Join the distinct path expressions in first-seen order, as graphite-web."""
    seen: list[str] = []
    for series in series_list:
        if series.path_expression not in seen:
            seen.append(series.path_expression)
    return ",".join(seen)


def aggregate_series(series_list: Sequence[TimeSeries], func: str) -> list[TimeSeries]:
    """Combine series point by point with an aggregation such as `sum`."""
    if not series_list:
        return []
    _, matrix, start, step = normalize(series_list)
    values = aggregate_columns(matrix, func)
    name = f"{func}Series({format_path_expressions(series_list)})"

    common: dict[str, TagValue] = dict(series_list[0].tags)
    for series in series_list[1:]:
        common = {
            key: value
            for key, value in common.items()
            if key in series.tags and series.tags[key] == value
        }
    common.setdefault("name", name)
    common["aggregatedBy"] = func
    return [
        TimeSeries(
            name=name,
            path_expression=name,
            start=start,
            end=start + values.size * step,
            step=step,
            values=values,
            tags=common,
        )
    ]


def sum_series(
    context: EvalContext, series_lists: list[TimeSeries]
) -> list[TimeSeries]:
    """Add series together at each point, skipping nulls."""
    return aggregate_series(series_lists, "sum")


def average_series(
    context: EvalContext, series_lists: list[TimeSeries]
) -> list[TimeSeries]:
    """Average series at each point over the non-null values."""
    return aggregate_series(series_lists, "average")


def summarize(
    context: EvalContext,
    series_list: list[TimeSeries],
    interval_string: str,
    func: str,
    align_to_from: bool,
) -> list[TimeSeries]:
    """Aggregate each series into buckets of a fixed interval.

    Buckets start at multiples of the interval, or at the series start when
    `align_to_from` is true. The last bucket may cover only part of the range.
    """
    # NOTE: graphite-web 1.1 appends one more, always-null bucket when the
    # series end is a multiple of the interval; this implementation does not.
    interval = parse_interval(interval_string)
    results: list[TimeSeries] = []
    for series in series_list:
        start = series.start
        if not align_to_from:
            start = series.start // interval * interval
        count = -(-(series.end - start) // interval)
        check_point_count(count, f"summarize of {series.name}")
        buckets = (series.timestamps - start) // interval
        values = aggregate_buckets(series.values, buckets, count, func)
        suffix = ", true" if align_to_from else ""
        name = f'summarize({series.name}, "{interval_string}", "{func}"{suffix})'
        tags = {
            **series.tags,
            "summarize": interval_string,
            "summarizeFunction": func,
        }
        results.append(
            series.derive(
                name=name,
                path_expression=name,
                start=start,
                end=start + count * interval,
                step=interval,
                values=values,
                tags=tags,
            )
        )
    return results


def moving_average(
    context: EvalContext,
    series_list: list[TimeSeries],
    window_size: int | str,
    x_files_factor: float | None,
) -> list[TimeSeries]:
    """Average each point over the window of points before it.

    The window is `window_size` points, or the points inside an interval such
    as '5min'. It excludes the current point, as in graphite-web. The series
    are fetched again from earlier so the first points have a full window.
    A window average is null when fewer than `x_files_factor` of its points
    are non-null (default 0: one non-null point is enough).
    """
    if not series_list:
        return []
    if isinstance(window_size, str):
        bootstrap = parse_interval(window_size)
    else:
        bootstrap = max(series.step for series in series_list) * window_size
    previews = context.evaluate(
        context.arg_nodes["seriesList"], from_s=context.from_s - bootstrap
    )
    originals = _match_originals(series_list, previews)

    results: list[TimeSeries] = []
    for preview, original in zip(previews, originals, strict=True):
        if isinstance(window_size, str):
            points = bootstrap // preview.step
            name = f'movingAverage({preview.name},"{window_size}")'
        else:
            points = window_size
            name = f"movingAverage({preview.name},{window_size})"
        start, count = _output_grid(preview, original, bootstrap)
        values = _window_means(preview, start, count, points, x_files_factor or 0.0)
        results.append(
            preview.derive(
                name=name,
                path_expression=name,
                start=start,
                end=start + count * preview.step,
                values=values,
                tags={**preview.tags, "movingAverage": window_size},
            )
        )
    return results


def _match_originals(
    originals: Sequence[TimeSeries], previews: Sequence[TimeSeries]
) -> list[TimeSeries | None]:
    """Pair each bootstrap series with the series evaluated for the request."""
    by_name = {series.name: series for series in originals}
    return [by_name.get(preview.name) for preview in previews]


def _output_grid(
    preview: TimeSeries, original: TimeSeries | None, bootstrap: int
) -> tuple[int, int]:
    """Return the start and length of the result grid on the preview's step."""
    if original is not None and original.step == preview.step:
        return original.start, len(original)
    # A series that appeared only in the earlier range: skip the bootstrap.
    step = preview.step
    start = -(-(preview.start + bootstrap) // step) * step
    return start, max(0, (preview.end - start) // step)


def _window_means(
    preview: TimeSeries, start: int, count: int, points: int, x_files_factor: float
) -> FloatArray:
    """Mean of the `points` values before each output point, skipping nulls."""
    if points <= 0 or count == 0:
        return np.full(count, np.nan)
    valid = ~np.isnan(preview.values)
    sums = np.concatenate(([0.0], np.cumsum(np.where(valid, preview.values, 0.0))))
    counts = np.concatenate(([0], np.cumsum(valid)))
    first = (start - preview.start) // preview.step
    high = np.clip(first + np.arange(count), 0, len(preview))
    low = np.maximum(high - points, 0)
    window_sum = sums[high] - sums[low]
    window_count = counts[high] - counts[low]
    enough = (window_count > 0) & (window_count / points >= x_files_factor)
    return np.where(enough, window_sum / np.maximum(window_count, 1), np.nan)


def scale(
    context: EvalContext, series_list: list[TimeSeries], factor: float
) -> list[TimeSeries]:
    """Multiply every value by a constant; nulls stay null."""
    results = []
    for series in series_list:
        name = "scale(%s,%g)" % (series.name, float(factor))  # noqa: UP031
        results.append(
            series.derive(
                name=name,
                path_expression=name,
                values=series.values * factor,
                tags={**series.tags, "scale": factor},
            )
        )
    return results


def alias(
    context: EvalContext, series_list: list[TimeSeries], new_name: str
) -> list[TimeSeries]:
    """Rename every series to `new_name`."""
    return [series.derive(name=new_name) for series in series_list]


def alias_by_node(
    context: EvalContext, series_list: list[TimeSeries], nodes: list[int | str]
) -> list[TimeSeries]:
    """Rename each series to the chosen nodes of its path, joined by dots.

    Integer nodes index the dotted path (negative counts from the end); string
    nodes name a tag. For a name wrapped in functions, such as
    `scale(a.b.c,2)`, the first path inside it is used.
    """
    results = []
    for series in series_list:
        path = series.name
        if path.endswith(")"):
            path = first_path_expression(path)
        parts = path.split(";", 1)[0].split(".")
        picked = [_pick_node(series, parts, node) for node in nodes]
        results.append(series.derive(name=".".join(picked)))
    return results


def _pick_node(series: TimeSeries, parts: list[str], node: int | str) -> str:
    if isinstance(node, str):
        return str(series.tags.get(node, ""))
    if not -len(parts) <= node < len(parts):
        raise QueryError(
            f"aliasByNode: argument 'nodes' value {node} is out of range for "
            f"{'.'.join(parts)!r}, which has {len(parts)} nodes"
        )
    return parts[node]


_SERIES_LISTS = Param(
    "seriesLists", ParamType.SERIES_LIST, required=True, multiple=True
)
_SERIES_LIST = Param("seriesList", ParamType.SERIES_LIST, required=True)

_SPECS = (
    FunctionSpec("sumSeries", "Combine", (_SERIES_LISTS,), sum_series),
    FunctionSpec("averageSeries", "Combine", (_SERIES_LISTS,), average_series),
    FunctionSpec(
        "summarize",
        "Transform",
        (
            _SERIES_LIST,
            Param("intervalString", ParamType.INTERVAL, required=True),
            Param("func", ParamType.AGG_FUNC, default="sum"),
            Param("alignToFrom", ParamType.BOOLEAN, default=False),
        ),
        summarize,
    ),
    FunctionSpec(
        "movingAverage",
        "Calculate",
        (
            _SERIES_LIST,
            Param("windowSize", ParamType.INT_OR_INTERVAL, required=True),
            Param("xFilesFactor", ParamType.FLOAT),
        ),
        moving_average,
    ),
    FunctionSpec(
        "scale",
        "Transform",
        (_SERIES_LIST, Param("factor", ParamType.FLOAT, required=True)),
        scale,
    ),
    FunctionSpec(
        "alias",
        "Alias",
        (_SERIES_LIST, Param("newName", ParamType.STRING, required=True)),
        alias,
    ),
    FunctionSpec(
        "aliasByNode",
        "Alias",
        (
            _SERIES_LIST,
            Param("nodes", ParamType.NODE_OR_TAG, required=True, multiple=True),
        ),
        alias_by_node,
    ),
)

FUNCTIONS: Mapping[str, FunctionSpec] = {spec.name: spec for spec in _SPECS} | {
    # Short forms that graphite-web accepts; results keep the long names.
    "sum": _SPECS[0],
    "avg": _SPECS[1],
}
"""Render functions by the name used in targets."""
