"""Evaluate render targets against a store and format the results.

maxDataPoints consolidation: a series with n points and n > maxDataPoints is
averaged into buckets of k = ceil(n / maxDataPoints) points, so its step
becomes k * step. Buckets start at multiples of the new step, which keeps
them stable while a dashboard refreshes. Because of that alignment the first
and last buckets may be partial, and the result may hold maxDataPoints + 1
points. Nulls are skipped, and a bucket of only nulls is null.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from citymesh.errors import QueryError
from citymesh.query.functions import FUNCTIONS
from citymesh.query.grammar import Call, Literal, Node, PathExpression, parse_target
from citymesh.query.registry import EvalContext, bind_arguments
from citymesh.query.series import TimeSeries, consolidate, fetch_series
from citymesh.query.timeparse import resolve_tz
from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)


def evaluate(
    targets: Sequence[str],
    store: TimeSeriesStore,
    from_s: int,
    until_s: int,
    max_data_points: int | None = None,
) -> list[TimeSeries]:
    """Evaluate render targets over [from_s, until_s) in epoch seconds.

    Results keep the order of the targets. Blank targets are skipped, and a
    path matching no series contributes nothing. Raises QueryError for an
    invalid target, an unknown function, a bad argument or an empty range.
    """
    if from_s >= until_s:
        raise QueryError(
            f"invalid time range: from ({from_s}) must be before until ({until_s})"
        )
    if max_data_points is not None and max_data_points < 1:
        raise QueryError(
            f"invalid maxDataPoints {max_data_points}: must be a positive integer"
        )
    context = EvalContext(
        store=store, from_s=from_s, until_s=until_s, evaluator=evaluate_node
    )
    results: list[TimeSeries] = []
    for target in targets:
        if not target.strip():
            continue
        node = parse_target(target)
        if isinstance(node, Literal):
            raise QueryError(
                f"invalid target {target!r}: expected a path or a function call, "
                f"got the value {node.value!r}"
            )
        results.extend(evaluate_node(node, context))
    if max_data_points is not None:
        results = [consolidate_to_points(s, max_data_points) for s in results]
    logger.debug("evaluated %d targets into %d series", len(targets), len(results))
    return results


def evaluate_node(node: Node, context: EvalContext) -> list[TimeSeries]:
    """Evaluate a path expression or function call into a series list."""
    if isinstance(node, PathExpression):
        return fetch_series(context.store, node.path, context.from_s, context.until_s)
    if isinstance(node, Call):
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            raise QueryError(
                f"unknown function {node.name!r} at position {node.position}; "
                f"supported functions are {', '.join(sorted(FUNCTIONS))}"
            )
        bound, nodes = bind_arguments(spec, node, context)
        call_context = dataclasses.replace(context, arg_nodes=nodes)
        result: list[TimeSeries] = spec.implementation(call_context, **bound)
        return result
    raise QueryError(
        f"expected a series list at position {node.position}, got {node.value!r}"
    )


def consolidate_to_points(series: TimeSeries, max_data_points: int) -> TimeSeries:
    """Average a series into aligned buckets of ceil(n / max_data_points) points."""
    if len(series) <= max_data_points:
        return series
    per_point = math.ceil(len(series) / max_data_points)
    return consolidate(series, per_point * series.step)


def to_json(series_list: Sequence[TimeSeries]) -> list[dict[str, Any]]:
    """Format series as graphite-web's `format=json` body (before encoding).

    Nulls and non-finite values become None, so the body is valid JSON.
    """
    body: list[dict[str, Any]] = []
    for series in series_list:
        datapoints = [
            [float(value) if math.isfinite(value) else None, int(stamp)]
            for value, stamp in zip(
                series.values.tolist(), series.timestamps.tolist(), strict=True
            )
        ]
        body.append(
            {"target": series.name, "tags": dict(series.tags), "datapoints": datapoints}
        )
    return body


def to_csv(series_list: Sequence[TimeSeries], tz: str | tzinfo | None = None) -> str:
    """Format series as graphite-web's `format=csv` body.

    One `name,YYYY-MM-DD HH:MM:SS,value` row per point with times in `tz`
    (default UTC), an empty value for null, and CRLF line ends from the csv
    module's default dialect, as graphite-web writes them.
    """
    zone = resolve_tz(tz)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for series in series_list:
        for value, stamp in zip(
            series.values.tolist(), series.timestamps.tolist(), strict=True
        ):
            moment = datetime.fromtimestamp(stamp, zone).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow(
                (series.name, moment, value if math.isfinite(value) else "")
            )
    return buffer.getvalue()
