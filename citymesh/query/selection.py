"""Render functions that pick, order, group or rename whole series.

Ranking and filtering use graphite-web 1.1.10's rules: a series whose
statistic is null ranks lowest, sorts are stable, and `currentBelow` keeps a
series whose last value is null.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import numpy as np

from citymesh.errors import QueryError
from citymesh.query.aggregation import AGGREGATION_ALIASES, canonical_aggregation
from citymesh.query.combine import aggregate_series, aggregation_key, count_rows
from citymesh.query.registry import EvalContext
from citymesh.query.series import TimeSeries

logger = logging.getLogger(__name__)


def statistic(series: TimeSeries, func: str) -> float:
    """Aggregate a whole series into one number, NaN when it has no values."""
    name = canonical_aggregation(func)
    values = series.values[~np.isnan(series.values)]
    if values.size == 0:
        return float("nan")
    reducers: dict[str, Callable[[np.ndarray], float]] = {
        "sum": lambda v: float(v.sum()),
        "average": lambda v: float(v.sum() / v.size),
        "avg_zero": lambda v: float(v.sum() / len(series)),
        "median": lambda v: float(np.median(v)),
        "min": lambda v: float(v.min()),
        "max": lambda v: float(v.max()),
        "last": lambda v: float(v[-1]),
        "first": lambda v: float(v[0]),
        "count": lambda v: float(v.size),
        "range": lambda v: float(v.max() - v.min()),
        "diff": lambda v: float(v[0] - v[1:].sum()),
        "stddev": lambda v: float(np.std(v)),
        "multiply": lambda v: (
            float(np.prod(v)) if v.size == len(series) else float("nan")
        ),
    }
    return reducers[name](values)


def _rank_key(series: TimeSeries, func: str) -> float:
    value = statistic(series, func)
    return -np.inf if np.isnan(value) else value


def _ranked(
    series_list: list[TimeSeries], func: str, highest: bool
) -> list[TimeSeries]:
    # Python's sort is stable in both directions, as graphite-web relies on.
    return sorted(series_list, key=lambda s: _rank_key(s, func), reverse=highest)


def highest(
    context: EvalContext, series_list: list[TimeSeries], n: int, func: str
) -> list[TimeSeries]:
    """Keep the n series with the highest statistic."""
    return _ranked(series_list, func, True)[: int(n)]


def lowest(
    context: EvalContext, series_list: list[TimeSeries], n: int, func: str
) -> list[TimeSeries]:
    """Keep the n series with the lowest statistic."""
    return _ranked(series_list, func, False)[: int(n)]


def _ranking(func: str, top: bool):  # type: ignore[no-untyped-def]
    def rank(
        context: EvalContext, series_list: list[TimeSeries], n: int
    ) -> list[TimeSeries]:
        return _ranked(series_list, func, top)[: int(n)]

    which = "highest" if top else "lowest"
    rank.__doc__ = f"Keep the n series with the {which} {func} value."
    return rank


highest_current = _ranking("last", True)
highest_max = _ranking("max", True)
highest_average = _ranking("average", True)
lowest_current = _ranking("last", False)
lowest_average = _ranking("average", False)


def _filter(func: str, above: bool):  # type: ignore[no-untyped-def]
    def keep(
        context: EvalContext, series_list: list[TimeSeries], n: float
    ) -> list[TimeSeries]:
        kept = []
        for series in series_list:
            value = statistic(series, func)
            if above:
                if not np.isnan(value) and value > n:
                    kept.append(series)
            elif np.isnan(value) or value <= n:
                kept.append(series)
        return kept

    which = "above" if above else "at or below"
    keep.__doc__ = f"Keep the series whose {func} value is {which} n."
    return keep


current_above = _filter("last", True)
current_below = _filter("last", False)
average_above = _filter("average", True)
maximum_above = _filter("max", True)


def limit(
    context: EvalContext, series_list: list[TimeSeries], n: int
) -> list[TimeSeries]:
    """Keep the first n series."""
    return series_list[:n]


def sort_by(
    context: EvalContext, series_list: list[TimeSeries], func: str, reverse: bool
) -> list[TimeSeries]:
    """Sort series by a statistic, ascending unless `reverse`."""
    return sorted(series_list, key=lambda s: _rank_key(s, func), reverse=reverse)


def sort_by_maxima(
    context: EvalContext, series_list: list[TimeSeries]
) -> list[TimeSeries]:
    """Sort series by their maximum, highest first."""
    return sorted(series_list, key=lambda s: _rank_key(s, "max"), reverse=True)


def sort_by_name(
    context: EvalContext, series_list: list[TimeSeries], natural: bool, reverse: bool
) -> list[TimeSeries]:
    """Sort series by name, with numbers compared by value when `natural`."""

    def natural_key(series: TimeSeries) -> str:
        return re.sub(r"(\d+)", lambda m: f"{int(m.group(0)):010}", series.name)

    if natural:
        return sorted(series_list, key=natural_key, reverse=reverse)
    return sorted(series_list, key=lambda s: s.name, reverse=reverse)


def _compile(function: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise QueryError(
            f"{function}: argument 'pattern' is not a valid regular expression "
            f"{pattern!r}: {err}"
        ) from err


def exclude(
    context: EvalContext, series_list: list[TimeSeries], pattern: str
) -> list[TimeSeries]:
    """Drop the series whose name matches a regular expression."""
    regex = _compile("exclude", pattern)
    return [s for s in series_list if not regex.search(s.name)]


def grep(
    context: EvalContext, series_list: list[TimeSeries], pattern: str
) -> list[TimeSeries]:
    """Keep the series whose name matches a regular expression."""
    regex = _compile("grep", pattern)
    return [s for s in series_list if regex.search(s.name)]


def unique(context: EvalContext, series_lists: list[TimeSeries]) -> list[TimeSeries]:
    """Keep the first series of each name."""
    seen: set[str] = set()
    kept = []
    for series in series_lists:
        if series.name not in seen:
            seen.add(series.name)
            kept.append(series)
    return kept


def alias(
    context: EvalContext, series_list: list[TimeSeries], new_name: str
) -> list[TimeSeries]:
    """Rename every series to `new_name`."""
    return [series.derive(name=new_name) for series in series_list]


def alias_by_node(
    context: EvalContext, series_list: list[TimeSeries], nodes: list[int | str]
) -> list[TimeSeries]:
    """Rename each series to the chosen nodes of its path or tag values."""
    return [s.derive(name=aggregation_key(s, nodes)) for s in series_list]


def alias_sub(
    context: EvalContext, series_list: list[TimeSeries], search: str, replace: str
) -> list[TimeSeries]:
    """Rename each series by a regular-expression substitution."""
    regex = _compile("aliasSub", search)
    try:
        return [s.derive(name=regex.sub(replace, s.name)) for s in series_list]
    except re.error as err:
        raise QueryError(
            f"aliasSub: argument 'replace' is invalid {replace!r}: {err}"
        ) from err


def apply_callback(
    function: str, callback: str, members: list[TimeSeries]
) -> TimeSeries:
    """Combine a group with a callback such as 'sum' or 'sumSeries'."""
    if callback == "countSeries":
        return count_rows(members)
    name = callback.removesuffix("Series")
    if name not in AGGREGATION_ALIASES:
        raise QueryError(
            f"{function}: argument 'callback' must be an aggregation such as "
            f"sum, average, max or sumSeries, got {callback!r}"
        )
    return aggregate_series(members, name)[0]


def group_by_nodes(
    context: EvalContext,
    series_list: list[TimeSeries],
    callback: str,
    nodes: list[int | str],
) -> list[TimeSeries]:
    """Combine the series that share the chosen nodes, named by those nodes."""
    groups: dict[str, list[TimeSeries]] = {}
    for series in series_list:
        groups.setdefault(aggregation_key(series, nodes), []).append(series)
    return [
        apply_callback("groupByNodes", callback, members).derive(name=key)
        for key, members in groups.items()
    ]


def group_by_node(
    context: EvalContext, series_list: list[TimeSeries], node_num: int, callback: str
) -> list[TimeSeries]:
    """Combine the series that share one node, named by that node."""
    return group_by_nodes(context, series_list, callback, [node_num])
