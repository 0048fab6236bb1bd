"""Evaluate render targets against a store and format the results.

maxDataPoints consolidation follows graphite-web 1.1.10's JSON renderer: a
series with more points than maxDataPoints over the whole request range is
consolidated by runs of k = ceil(points / maxDataPoints) values with its
consolidation function (consolidateBy), after moving its start to a
multiple of k * step so that refreshes give the same buckets. Like
graphite-web, the start moves by one run but only run - 1 leading values are
dropped, so each consolidated value is stamped one step early.
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

import numpy as np

from citymesh.errors import QueryError
from citymesh.query import pushdown
from citymesh.query.functions import FUNCTIONS
from citymesh.query.grammar import Call, Literal, Node, PathExpression, parse_target
from citymesh.query.registry import EvalContext, bind_arguments
from citymesh.query.series import TimeSeries, consolidate_values, fetch_series
from citymesh.query.timeparse import resolve_tz
from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)


def evaluate(
    targets: Sequence[str],
    store: TimeSeriesStore,
    from_s: int,
    until_s: int,
    now: int | None = None,
    tz: str | tzinfo | None = None,
    max_data_points: int | None = None,
) -> list[TimeSeries]:
    """Evaluate render targets over (from_s, until_s] in epoch seconds.

    Results keep the order of the targets. Blank targets are skipped, and a
    path matching no series contributes nothing. Fetches end at `now` at the
    latest, as whisper's do. With `max_data_points`, the results are
    consolidated as consolidate_for_display does, and targets that are paths
    are read already consolidated when the store can aggregate. Raises
    QueryError for an invalid target, an unknown function, a bad argument or
    an empty range.
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
        store=store,
        from_s=from_s,
        until_s=until_s,
        evaluator=evaluate_node,
        now=now,
        tz=resolve_tz(tz),
    )
    nodes = []
    for target in targets:
        if not target.strip():
            continue
        node = parse_target(target)
        if isinstance(node, Literal):
            raise QueryError(
                f"invalid target {target!r}: expected a path or a function call, "
                f"got the value {node.value!r}"
            )
        nodes.append(node)
    if max_data_points is not None:
        pushed = pushdown.consolidate_paths(context, nodes, max_data_points)
        if pushed is not None:
            return pushed
    results: list[TimeSeries] = []
    for node in nodes:
        results.extend(evaluate_node(node, context))
    logger.debug("evaluated %d targets into %d series", len(targets), len(results))
    if max_data_points is not None:
        return consolidate_for_display(results, max_data_points)
    return results


def evaluate_node(node: Node, context: EvalContext) -> list[TimeSeries]:
    """Evaluate a path expression or function call into a series list."""
    if isinstance(node, PathExpression):
        until_s = context.until_s
        if context.now is not None:
            until_s = min(until_s, context.now)
        if until_s <= context.from_s:
            return []
        return fetch_series(context.store, node.path, context.from_s, until_s)
    if isinstance(node, Call):
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            raise QueryError(
                f"unknown function {node.name!r} at position {node.position}; "
                f"supported functions are {', '.join(sorted(FUNCTIONS))}"
            )
        if spec.pushdown is not None:
            pushed = spec.pushdown(spec, context, node)
            if pushed is not None:
                return pushed
        bound, nodes = bind_arguments(spec, node, context)
        call_context = dataclasses.replace(context, arg_nodes=nodes, call=node)
        result: list[TimeSeries] = spec.implementation(call_context, **bound)
        return result
    raise QueryError(
        f"expected a series list at position {node.position}, got {node.value!r}"
    )


def consolidate_for_display(
    series_list: Sequence[TimeSeries], max_data_points: int
) -> list[TimeSeries]:
    """Consolidate series to about max_data_points points as graphite-web's JSON."""
    if max_data_points < 1:
        raise QueryError(
            f"invalid maxDataPoints {max_data_points}: must be a positive integer"
        )
    if not series_list:
        return []
    time_range = max(s.end for s in series_list) - min(s.start for s in series_list)
    results = []
    for series in series_list:
        if max_data_points == 1:
            per_point = max(len(series), 1)
            start = series.start
            values = series.values
        else:
            points = time_range / series.step
            if max_data_points >= points:
                results.append(series)
                continue
            per_point = math.ceil(points / max_data_points)
            seconds = per_point * series.step
            nudge = seconds + series.start % series.step - series.start % seconds
            start = series.start + nudge
            values = series.values[max(nudge // series.step - 1, 0) :]
        consolidated = consolidate_values(values, per_point, series.consolidation_func)
        step = per_point * series.step
        # graphite-web stamps values with range(start, end + 1, step).
        count = min(consolidated.size, max(0, (series.end - start) // step + 1))
        results.append(
            series.derive(
                start=start,
                end=start + count * step,
                step=step,
                values=consolidated[:count],
            )
        )
    return results


def to_json(
    series_list: Sequence[TimeSeries], no_null_points: bool = False
) -> list[dict[str, Any]]:
    """Format series as graphite-web's `format=json` body (before encoding).

    Nulls and non-finite values become None, so the body is valid JSON. With
    `no_null_points`, null points are left out and so are series left empty.
    """
    body: list[dict[str, Any]] = []
    for series in series_list:
        values: list[float | None] = list(series.values.tolist())
        for index in np.flatnonzero(~np.isfinite(series.values)).tolist():
            values[index] = None
        datapoints: list[list[Any]] = list(
            map(list, zip(values, series.timestamps.tolist(), strict=True))
        )
        if no_null_points:
            datapoints = [point for point in datapoints if point[0] is not None]
            if not datapoints:
                continue
        body.append(
            {"target": series.name, "tags": dict(series.tags), "datapoints": datapoints}
        )
    return body


def series_info(series: TimeSeries) -> dict[str, Any]:
    """Describe a series as graphite-web's `format=pickle` does, nulls as None."""
    return {
        "name": series.name,
        "start": series.start,
        "end": series.end,
        "step": series.step,
        "values": [v if math.isfinite(v) else None for v in series.values.tolist()],
        "pathExpression": series.path_expression,
        "valuesPerPoint": 1,
        "consolidationFunc": series.consolidation_func,
        "xFilesFactor": 0.0,
    }


def to_raw(series_list: Sequence[TimeSeries]) -> str:
    """Format series as graphite-web's `format=raw`: `name,start,end,step|v1,v2`."""
    lines = []
    for series in series_list:
        values = ",".join(
            repr(v) if math.isfinite(v) else "None" for v in series.values.tolist()
        )
        lines.append(
            f"{series.name},{series.start},{series.end},{series.step}|{values}\n"
        )
    return "".join(lines)


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
