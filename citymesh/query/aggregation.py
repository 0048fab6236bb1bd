"""Aggregation functions over groups of values, with Graphite null handling.

Every function skips NaN (null) values, and a group without any non-null value
yields NaN. The names and aliases follow graphite-web's `aggFunc` parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from citymesh.errors import QueryError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]

# Alias -> canonical name, as graphite-web accepts them.
AGGREGATION_ALIASES: dict[str, str] = {
    "sum": "sum",
    "total": "sum",
    "average": "average",
    "avg": "average",
    "median": "median",
    "min": "min",
    "max": "max",
    "last": "last",
    "current": "last",
    "first": "first",
    "count": "count",
    "range": "range",
    "rangeOf": "range",
    "diff": "diff",
    "stddev": "stddev",
    "multiply": "multiply",
    "avg_zero": "avg_zero",
}


def canonical_aggregation(name: str) -> str:
    """Return the canonical aggregation name for `name` or its alias."""
    try:
        return AGGREGATION_ALIASES[name]
    except KeyError:
        allowed = ", ".join(sorted(AGGREGATION_ALIASES))
        raise QueryError(
            f"invalid aggregation function {name!r}: use one of {allowed}"
        ) from None


def aggregate_buckets(
    values: FloatArray, buckets: IndexArray, count: int, func: str
) -> FloatArray:
    """Aggregate `values` into `count` buckets given each value's bucket index.

    Values keep their order inside a bucket, which matters for `first`,
    `last` and `diff`. Indexes must lie in [0, count).
    """
    name = canonical_aggregation(func)
    valid = ~np.isnan(values)
    non_null = values[valid]
    index = buckets[valid]
    sizes = np.bincount(index, minlength=count)
    filled = sizes > 0
    result = np.full(count, np.nan)
    if name in ("avg_zero", "multiply"):
        # Both look at the nulls: avg_zero counts them as zeros and a product
        # with a null factor is null, as graphite-web's safeMul.
        all_sizes = np.bincount(buckets, minlength=count)
        if name == "avg_zero":
            totals = np.bincount(index, weights=non_null, minlength=count)
            result[filled] = totals[filled] / all_sizes[filled]
            return result
        filled &= sizes == all_sizes
    if name in _VECTORISED:
        reduced = _VECTORISED[name](non_null, index, sizes, count)
        result[filled] = reduced[filled]
        return result

    reducer = _PER_GROUP[name]
    order = np.argsort(index, kind="stable")
    groups = np.split(non_null[order], np.cumsum(sizes)[:-1])
    for bucket in np.flatnonzero(filled):
        result[bucket] = reducer(groups[bucket])
    return result


def aggregate_columns(matrix: FloatArray, func: str) -> FloatArray:
    """Aggregate each column of a (series x points) matrix across series."""
    series_count, point_count = matrix.shape
    if series_count == 0:
        return np.full(point_count, np.nan)
    flat = np.ascontiguousarray(matrix.T).reshape(-1)
    buckets = np.repeat(np.arange(point_count, dtype=np.int64), series_count)
    return aggregate_buckets(flat, buckets, point_count, func)


def _sum(
    non_null: FloatArray, index: IndexArray, sizes: IndexArray, n: int
) -> FloatArray:
    return np.bincount(index, weights=non_null, minlength=n).astype(np.float64)


def _average(
    non_null: FloatArray, index: IndexArray, sizes: IndexArray, n: int
) -> FloatArray:
    totals = np.bincount(index, weights=non_null, minlength=n)
    return totals / np.maximum(sizes, 1)


def _count(
    non_null: FloatArray, index: IndexArray, sizes: IndexArray, n: int
) -> FloatArray:
    return sizes.astype(np.float64)


def _min(
    non_null: FloatArray, index: IndexArray, sizes: IndexArray, n: int
) -> FloatArray:
    out = np.full(n, np.inf)
    np.minimum.at(out, index, non_null)
    return out


def _max(
    non_null: FloatArray, index: IndexArray, sizes: IndexArray, n: int
) -> FloatArray:
    out = np.full(n, -np.inf)
    np.maximum.at(out, index, non_null)
    return out


def _range(
    non_null: FloatArray, index: IndexArray, sizes: IndexArray, n: int
) -> FloatArray:
    return _max(non_null, index, sizes, n) - _min(non_null, index, sizes, n)


def _last(
    non_null: FloatArray, index: IndexArray, sizes: IndexArray, n: int
) -> FloatArray:
    positions = np.full(n, -1, dtype=np.int64)
    np.maximum.at(positions, index, np.arange(non_null.size, dtype=np.int64))
    return _take(non_null, positions)


def _first(
    non_null: FloatArray, index: IndexArray, sizes: IndexArray, n: int
) -> FloatArray:
    positions = np.full(n, non_null.size, dtype=np.int64)
    np.minimum.at(positions, index, np.arange(non_null.size, dtype=np.int64))
    return _take(non_null, positions)


def _take(non_null: FloatArray, positions: IndexArray) -> FloatArray:
    """Pick non_null[position] where the position is valid and NaN elsewhere."""
    inside = (positions >= 0) & (positions < non_null.size)
    out = np.full(positions.size, np.nan)
    out[inside] = non_null[positions[inside]]
    return out


def _diff(group: FloatArray) -> float:
    return float(group[0] - group[1:].sum())


def _stddev(group: FloatArray) -> float:
    # Population standard deviation, as graphite-web computes it.
    return float(np.std(group))


_VECTORISED: dict[
    str, Callable[[FloatArray, IndexArray, IndexArray, int], FloatArray]
] = {
    "sum": _sum,
    "average": _average,
    "count": _count,
    "min": _min,
    "max": _max,
    "range": _range,
    "last": _last,
    "first": _first,
}

_PER_GROUP: dict[str, Callable[[FloatArray], float]] = {
    "median": lambda group: float(np.median(group)),
    "diff": _diff,
    "stddev": _stddev,
    "multiply": lambda group: float(np.prod(group)),
}
