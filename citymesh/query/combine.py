"""Render functions that combine several series point by point.

Names, tags and null handling follow graphite-web 1.1.10: series are brought
to one step and then combined by position (see `normalize`), an aggregate is
null where every input is null, and a quotient by zero or null is null.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from citymesh.errors import QueryError
from citymesh.query.aggregation import FloatArray, aggregate_columns
from citymesh.query.grammar import first_path_expression
from citymesh.query.registry import EvalContext
from citymesh.query.series import TagValue, TimeSeries, normalize

logger = logging.getLogger(__name__)


def format_path_expressions(series_list: Sequence[TimeSeries]) -> str:
    """Join the distinct path expressions in first-seen order, as graphite-web."""
    seen: list[str] = []
    for series in series_list:
        if series.path_expression not in seen:
            seen.append(series.path_expression)
    return ",".join(seen)


def build_series(
    name: str,
    start: int,
    step: int,
    values: FloatArray,
    tags: dict[str, TagValue] | None = None,
    path_expression: str | None = None,
) -> TimeSeries:
    """Build a new series on a grid from `start`, named and tagged."""
    return TimeSeries(
        name=name,
        path_expression=path_expression or name,
        start=start,
        end=start + values.size * step,
        step=step,
        values=values,
        tags=tags if tags is not None else {"name": name},
    )


def common_tags(series_list: Sequence[TimeSeries]) -> dict[str, TagValue]:
    """Return the tags that every series has with the same value."""
    common: dict[str, TagValue] = dict(series_list[0].tags)
    for series in series_list[1:]:
        common = {
            key: value
            for key, value in common.items()
            if key in series.tags and series.tags[key] == value
        }
    return common


def aggregate_series(series_list: Sequence[TimeSeries], func: str) -> list[TimeSeries]:
    """Combine series point by point with an aggregation such as `sum`."""
    if not series_list:
        return []
    matrix, start, step = normalize(series_list)
    values = aggregate_columns(matrix, func)
    short = func.removesuffix("Series")
    name = f"{short}Series({format_path_expressions(series_list)})"
    tags = common_tags(series_list)
    tags.setdefault("name", name)
    tags["aggregatedBy"] = short
    return [build_series(name, start, step, values, tags)]


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


def min_series(
    context: EvalContext, series_lists: list[TimeSeries]
) -> list[TimeSeries]:
    """Take the minimum of the series at each point."""
    return aggregate_series(series_lists, "min")


def max_series(
    context: EvalContext, series_lists: list[TimeSeries]
) -> list[TimeSeries]:
    """Take the maximum of the series at each point."""
    return aggregate_series(series_lists, "max")


def diff_series(
    context: EvalContext, series_lists: list[TimeSeries]
) -> list[TimeSeries]:
    """Subtract the second and later series from the first, skipping nulls."""
    return aggregate_series(series_lists, "diff")


def stddev_series(
    context: EvalContext, series_lists: list[TimeSeries]
) -> list[TimeSeries]:
    """Population standard deviation of the series at each point."""
    return aggregate_series(series_lists, "stddev")


def multiply_series(
    context: EvalContext, series_lists: list[TimeSeries]
) -> list[TimeSeries]:
    """Multiply series at each point, null where any factor is null."""
    if len(series_lists) == 1:
        return series_lists
    return aggregate_series(series_lists, "multiply")


def count_series(
    context: EvalContext, series_lists: list[TimeSeries]
) -> list[TimeSeries]:
    """Count the series at each point, nulls included, as graphite-web."""
    if not series_lists:
        return []
    return [count_rows(series_lists)]


def count_rows(series_list: Sequence[TimeSeries]) -> TimeSeries:
    """Return the countSeries result of a non-empty list."""
    matrix, start, step = normalize(series_list)
    name = f"countSeries({format_path_expressions(series_list)})"
    values = np.full(matrix.shape[1], float(len(series_list)))
    return build_series(name, start, step, values)


def group(context: EvalContext, series_lists: list[TimeSeries]) -> list[TimeSeries]:
    """Join several series lists into one."""
    return list(series_lists)


def percentile_rows(matrix: FloatArray, n: float, interpolate: bool) -> FloatArray:
    """Return graphite-web's n-th percentile of each column's non-null values."""
    ordered = np.sort(matrix, axis=0)
    counts = np.sum(~np.isnan(matrix), axis=0)
    fractional = n / 100.0 * (counts + 1)
    rank = fractional.astype(np.int64)
    fraction = fractional - rank
    if not interpolate:
        rank = rank + np.ceil(fraction).astype(np.int64)
    index = np.where(rank == 0, 0, rank - 1)
    index = np.where(rank - 1 == counts, counts - 1, index)
    index = np.clip(index, 0, max(matrix.shape[0] - 1, 0))
    columns = np.arange(matrix.shape[1])
    result = ordered[index, columns]
    if interpolate:
        following = np.clip(rank, 0, max(matrix.shape[0] - 1, 0))
        nxt = ordered[following, columns]
        moves = rank != counts
        result = np.where(moves, result + fraction * (nxt - result), result)
    return np.where(counts > 0, result, np.nan)


def percentile_of_series(
    context: EvalContext, series_list: list[TimeSeries], n: float, interpolate: bool
) -> list[TimeSeries]:
    """Take the n-th percentile across the series at each point."""
    if n <= 0:
        raise QueryError(
            f"percentileOfSeries: argument 'n' must be greater than 0, got {n}"
        )
    if not series_list:
        return []
    matrix, start, step = normalize(series_list)
    values = percentile_rows(matrix, n, interpolate)
    name = "percentileOfSeries(%s,%g)" % (series_list[0].path_expression, n)  # noqa: UP031
    return [build_series(name, start, step, values)]


def safe_divide(dividend: FloatArray, divisor: FloatArray) -> FloatArray:
    """Divide element-wise, null where the divisor is zero or null."""
    usable = ~np.isnan(divisor) & (divisor != 0)
    safe = np.where(usable, divisor, 1.0)
    return np.where(usable, dividend / safe, np.nan)


def _pair(first: TimeSeries, second: TimeSeries) -> tuple[FloatArray, int, int]:
    matrix, start, step = normalize([first, second])
    return matrix, start, step


def divide_series(
    context: EvalContext,
    dividend_series_list: list[TimeSeries],
    divisor_series: list[TimeSeries],
) -> list[TimeSeries]:
    """Divide each series by one divisor series."""
    if not divisor_series:
        return [
            series.derive(
                name=f"divideSeries({series.name},MISSING)",
                path_expression=f"divideSeries({series.name},MISSING)",
                values=np.full(len(series), np.nan),
            )
            for series in dividend_series_list
        ]
    if len(divisor_series) > 1:
        raise QueryError(
            "divideSeries: argument 'divisorSeries' must match exactly 1 series, "
            f"got {len(divisor_series)}"
        )
    divisor = divisor_series[0]
    results = []
    for series in dividend_series_list:
        matrix, start, step = _pair(series, divisor)
        name = f"divideSeries({series.name},{divisor.name})"
        values = safe_divide(matrix[0], matrix[1])
        results.append(build_series(name, start, step, values))
    return results


def _percent(values: FloatArray, totals: FloatArray) -> FloatArray:
    return safe_divide(values, totals) * 100.0


def _sum_rows(series_list: Sequence[TimeSeries]) -> tuple[FloatArray, int, int]:
    matrix, start, step = normalize(series_list)
    return aggregate_columns(matrix, "sum"), start, step


def as_percent(
    context: EvalContext,
    series_list: list[TimeSeries],
    total: list[TimeSeries] | float | None,
    nodes: list[int | str],
) -> list[TimeSeries]:
    """Express each series as a percentage of a total (the sum by default)."""
    if not series_list:
        return []
    if nodes:
        return _as_percent_by_nodes(series_list, total, nodes)
    if isinstance(total, list):
        if len(total) not in (1, len(series_list)):
            raise QueryError(
                "asPercent: argument 'total' must match 1 series or as many "
                f"series as 'seriesList' ({len(series_list)}), got {len(total)}"
            )
        if len(total) == len(series_list) and len(total) != 1:
            pairs = zip(
                sorted(series_list, key=lambda s: s.name),
                sorted(total, key=lambda s: s.name),
                strict=True,
            )
            results = []
            for first, second in pairs:
                matrix, start, step = _pair(first, second)
                name = f"asPercent({first.name},{second.name})"
                values = _percent(matrix[0], matrix[1])
                results.append(build_series(name, start, step, values))
            return results
        totals = total[0].values
        total_text = total[0].name
    elif total is None:
        totals, _, _ = _sum_rows(series_list)
        total_text = f"sumSeries({format_path_expressions(series_list)})"
    else:
        totals = np.full(len(series_list[0]), float(total))
        total_text = str(total)
    results = []
    for series in series_list:
        width = max(len(series), totals.size)
        values = np.full(width, np.nan)
        values[: len(series)] = series.values
        padded = np.full(width, np.nan)
        padded[: totals.size] = totals
        name = f"asPercent({series.name},{total_text})"
        results.append(
            build_series(name, series.start, series.step, _percent(values, padded))
        )
    return results


def _as_percent_by_nodes(
    series_list: list[TimeSeries],
    total: list[TimeSeries] | float | None,
    nodes: list[int | str],
) -> list[TimeSeries]:
    keys: list[str] = []
    members: dict[str, list[TimeSeries]] = {}
    for series in series_list:
        key = aggregation_key(series, nodes)
        if key not in members:
            keys.append(key)
        members.setdefault(key, []).append(series)
    totals_by_key: dict[str, list[TimeSeries]] = {}
    if total is None:
        totals_by_key = dict(members)
    elif isinstance(total, list):
        for series in total:
            key = aggregation_key(series, nodes)
            if key not in totals_by_key and key not in keys:
                keys.append(key)
            totals_by_key.setdefault(key, []).append(series)
    else:
        raise QueryError("asPercent: argument 'total' must be a series list with nodes")
    summed: dict[str, TimeSeries] = {}
    for key, group_list in totals_by_key.items():
        if len(group_list) == 1:
            summed[key] = group_list[0]
        else:
            values, start, step = _sum_rows(group_list)
            name = f"sumSeries({format_path_expressions(group_list)})"
            summed[key] = build_series(name, start, step, values)
    results = []
    for key in keys:
        if key not in members:
            second = summed[key]
            name = f"asPercent(MISSING,{second.name})"
            results.append(
                build_series(
                    name, second.start, second.step, np.full(len(second), np.nan)
                )
            )
            continue
        for first in members[key]:
            if key not in summed:
                name = f"asPercent({first.name},MISSING)"
                values = np.full(len(first), np.nan)
                results.append(build_series(name, first.start, first.step, values))
                continue
            second = summed[key]
            matrix, start, step = _pair(first, second)
            name = f"asPercent({first.name},{second.name})"
            results.append(
                build_series(name, start, step, _percent(matrix[0], matrix[1]))
            )
    return results


def node_or_tag(series: TimeSeries, node: int | str, path: str | None) -> str:
    """Return a dotted node of the path or, for a name, the value of that tag."""
    if isinstance(node, int):
        parts = (path or series.name).split(";", 2)[0].split(".")
        if -len(parts) <= node < len(parts):
            return parts[node]
    return str(series.tags.get(str(node), ""))


def aggregation_key(series: TimeSeries, nodes: Sequence[int | str]) -> str:
    """Join the chosen nodes or tags of a series, as graphite-web's aggKey."""
    path = None
    if series.name.endswith(")"):
        path = first_path_expression(series.name)
    return ".".join(node_or_tag(series, node, path) for node in nodes)
