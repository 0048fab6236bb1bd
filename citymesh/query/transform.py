"""Render functions that transform each series on its own grid.

Names use graphite-web 1.1.10's formats (`%g` for numbers), and each result
carries the tag graphite-web adds, such as `scale` or `derivative`.
"""

from __future__ import annotations

import logging

import numpy as np

from citymesh.errors import QueryError
from citymesh.query.aggregation import FloatArray
from citymesh.query.combine import build_series, percentile_rows
from citymesh.query.registry import EvalContext
from citymesh.query.series import TagValue, TimeSeries
from citymesh.query.timeparse import parse_offset

logger = logging.getLogger(__name__)


def _g(value: float) -> str:
    return "%g" % float(value)  # noqa: UP031


def rename(
    series: TimeSeries, name: str, values: FloatArray | None = None, **tags: TagValue
) -> TimeSeries:
    """Return the series under a new name, with new values and added tags."""
    return series.derive(
        name=name,
        path_expression=name,
        values=series.values if values is None else values,
        tags={**series.tags, **tags},
    )


def scale(
    context: EvalContext, series_list: list[TimeSeries], factor: float
) -> list[TimeSeries]:
    """Multiply every value by a constant, keeping nulls."""
    return [
        rename(s, f"scale({s.name},{_g(factor)})", s.values * factor, scale=factor)
        for s in series_list
    ]


def offset(
    context: EvalContext, series_list: list[TimeSeries], factor: float
) -> list[TimeSeries]:
    """Add a constant to every value, keeping nulls."""
    return [
        rename(s, f"offset({s.name},{_g(factor)})", s.values + factor, offset=factor)
        for s in series_list
    ]


def absolute(context: EvalContext, series_list: list[TimeSeries]) -> list[TimeSeries]:
    """Take the absolute value of every value."""
    return [
        rename(s, f"absolute({s.name})", np.abs(s.values), absolute=1)
        for s in series_list
    ]


def derivative(context: EvalContext, series_list: list[TimeSeries]) -> list[TimeSeries]:
    """Subtract the previous value from each value, null next to a null."""
    results = []
    for series in series_list:
        values = np.full(len(series), np.nan)
        values[1:] = series.values[1:] - series.values[:-1]
        results.append(
            rename(series, f"derivative({series.name})", values, derivative=1)
        )
    return results


def non_negative_delta(
    values: FloatArray, max_value: float | None, min_value: float | None
) -> FloatArray:
    """Return graphite-web's counter deltas, handling wraps at max_value.

    A value above max_value or below min_value is null and is not used as
    the previous value of the next point. A decrease is a wrap to
    `max_value + 1 - min_value` when max_value is set, a reset from
    min_value when only min_value is set, and null otherwise. A null with
    max_value set gives null here, where graphite-web 1.1.10 on Python 3
    raises TypeError (`None > maxValue`).
    """
    out_of_range = np.zeros(values.size, dtype=bool)
    with np.errstate(invalid="ignore"):
        if max_value is not None:
            out_of_range |= values > max_value
        if min_value is not None:
            out_of_range |= values < min_value
    previous = np.full(values.size, np.nan)
    previous[1:] = np.where(out_of_range[:-1], np.nan, values[:-1])
    deltas = values - previous
    with np.errstate(invalid="ignore"):
        wrapped = deltas < 0
    if max_value is not None:
        wrap = max_value + 1 + values - previous - (min_value or 0)
        deltas = np.where(wrapped, wrap, deltas)
    elif min_value is not None:
        deltas = np.where(wrapped, values - min_value, deltas)
    else:
        deltas = np.where(wrapped, np.nan, deltas)
    return np.where(out_of_range, np.nan, deltas)


def non_negative_derivative(
    context: EvalContext,
    series_list: list[TimeSeries],
    max_value: float | None,
    min_value: float | None,
) -> list[TimeSeries]:
    """Difference of counters, treating a decrease as a wrap or reset."""
    return [
        rename(
            s,
            f"nonNegativeDerivative({s.name})",
            non_negative_delta(s.values, max_value, min_value),
            nonNegativeDerivative=1,
        )
        for s in series_list
    ]


def per_second(
    context: EvalContext,
    series_list: list[TimeSeries],
    max_value: float | None,
    min_value: float | None,
) -> list[TimeSeries]:
    """Counter deltas divided by the step, rounded to 6 decimals as graphite-web."""
    return [
        rename(
            s,
            f"perSecond({s.name})",
            np.round(non_negative_delta(s.values, max_value, min_value) / s.step, 6),
            perSecond=1,
        )
        for s in series_list
    ]


def integral(context: EvalContext, series_list: list[TimeSeries]) -> list[TimeSeries]:
    """Sum the values so far, keeping nulls, which add nothing."""
    results = []
    for series in series_list:
        valid = ~np.isnan(series.values)
        totals = np.cumsum(np.where(valid, series.values, 0.0))
        values = np.where(valid, totals, np.nan)
        results.append(rename(series, f"integral({series.name})", values, integral=1))
    return results


def fill_gaps(values: FloatArray, limit: float) -> FloatArray:
    """Fill each run of at most `limit` nulls after a value with that value."""
    null = np.isnan(values)
    if not null.any():
        return values
    edges = np.diff(np.concatenate(([0], null.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    lengths = ends - starts
    # A leading run has no value before it and is never filled.
    keep = (starts > 0) & (lengths <= limit)
    filled = values.copy()
    for_runs = np.repeat(values[starts[keep] - 1], lengths[keep])
    positions = np.concatenate(
        [np.arange(a, b) for a, b in zip(starts[keep], ends[keep], strict=True)]
        or [np.zeros(0, dtype=np.int64)]
    )
    filled[positions] = for_runs
    return filled


def keep_last_value(
    context: EvalContext, series_list: list[TimeSeries], limit: float | None
) -> list[TimeSeries]:
    """Continue the last value over gaps of at most `limit` nulls."""
    bound = float("inf") if limit is None else limit
    return [
        rename(s, f"keepLastValue({s.name})", fill_gaps(s.values, bound))
        for s in series_list
    ]


def transform_null(
    context: EvalContext,
    series_list: list[TimeSeries],
    default: float,
    reference_series: list[TimeSeries],
) -> list[TimeSeries]:
    """Replace nulls by a default, only where a reference series has data if given."""
    results = []
    fill: FloatArray | None = None
    if reference_series:
        width = max(len(s) for s in reference_series)
        present = np.zeros(width, dtype=bool)
        for reference in reference_series:
            present[: len(reference)] |= ~np.isnan(reference.values)
        fill = np.where(present, default, np.nan)
    for series in series_list:
        if fill is None:
            name = f"transformNull({series.name},{_g(default)})"
            values = np.where(np.isnan(series.values), default, series.values)
        else:
            name = f"transformNull({series.name},{_g(default)},referenceSeries)"
            row = np.full(len(series), np.nan)
            size = min(len(series), fill.size)
            row[:size] = fill[:size]
            values = np.where(np.isnan(series.values), row, series.values)
        tags: dict[str, TagValue] = {"transformNull": default}
        if fill is not None:
            tags["referenceSeries"] = 1
        results.append(rename(series, name, values, **tags))
    return results


def delay(
    context: EvalContext, series_list: list[TimeSeries], steps: int
) -> list[TimeSeries]:
    """Shift values by a number of steps, later for positive `steps`."""
    results = []
    for series in series_list:
        values = np.full(len(series), np.nan)
        if steps >= 0:
            if steps < len(series):
                values[steps:] = series.values[: len(series) - steps]
        elif -steps < len(series):
            values[: len(series) + steps] = series.values[-steps:]
        name = f"delay({series.name},{steps})"
        results.append(rename(series, name, values, delay=steps))
    return results


def remove_below_value(
    context: EvalContext, series_list: list[TimeSeries], n: float
) -> list[TimeSeries]:
    """Set values below `n` to null."""
    results = []
    for series in series_list:
        with np.errstate(invalid="ignore"):
            values = np.where(series.values < n, np.nan, series.values)
        name = f"removeBelowValue({series.name}, {_g(n)})"
        results.append(rename(series, name, values))
    return results


def remove_above_value(
    context: EvalContext, series_list: list[TimeSeries], n: float
) -> list[TimeSeries]:
    """Set values above `n` to null."""
    results = []
    for series in series_list:
        with np.errstate(invalid="ignore"):
            values = np.where(series.values > n, np.nan, series.values)
        name = f"removeAboveValue({series.name}, {_g(n)})"
        results.append(rename(series, name, values))
    return results


def consolidate_by(
    context: EvalContext, series_list: list[TimeSeries], consolidation_func: str
) -> list[TimeSeries]:
    """Choose how maxDataPoints consolidation aggregates the series."""
    return [
        rename(
            s,
            f'consolidateBy({s.name},"{consolidation_func}")',
            consolidateBy=consolidation_func,
        ).derive(consolidation_func=consolidation_func)
        for s in series_list
    ]


def cumulative(context: EvalContext, series_list: list[TimeSeries]) -> list[TimeSeries]:
    """Consolidate by sum, as graphite-web's alias of consolidateBy(x,'sum')."""
    return consolidate_by(context, series_list, "sum")


def n_percentile(
    context: EvalContext, series_list: list[TimeSeries], n: float
) -> list[TimeSeries]:
    """Replace each series by a constant line at its n-th percentile."""
    if n <= 0:
        raise QueryError(f"nPercentile: argument 'n' must be greater than 0, got {n}")
    results = []
    for series in series_list:
        if np.isnan(series.values).all():
            continue
        (value,) = percentile_rows(series.values.reshape(-1, 1), n, False)
        name = f"nPercentile({series.name}, {_g(n)})"
        results.append(rename(series, name, np.full(len(series), value), nPercentile=n))
    return results


def _shift_text(text: str) -> tuple[str, int]:
    """Return graphite-web's shift string (a bare count means the past) and seconds."""
    shown = "-" + text if text[:1].isdigit() else text
    return shown, parse_offset(shown)


def time_shift(
    context: EvalContext,
    series_list: list[TimeSeries],
    time_shift: str,
    reset_end: bool,
    align_dst: bool,
) -> list[TimeSeries]:
    """Draw the series as it was a time shift ago, on the current range.

    `alignDST` is accepted and has no effect: graphite-web applies it with
    the server's local zone, and a UTC server (the usual case) never moves.
    """
    if not series_list:
        return []
    shown, seconds = _shift_text(time_shift)
    node = context.arg_nodes["seriesList"]
    shifted = context.evaluate(
        node, from_s=context.from_s + seconds, until_s=context.until_s + seconds
    )
    first = series_list[0]
    results = []
    for series in shifted:
        count = len(series)
        if reset_end:
            count = min(count, len(first) + 1)
        name = f'timeShift({series.name}, "{shown}")'
        results.append(
            series.derive(
                name=name,
                path_expression=series.path_expression,
                start=first.start,
                end=first.start + count * series.step,
                values=series.values[:count],
                tags={**series.tags, "timeShift": shown},
            )
        )
    return results


def time_stack(
    context: EvalContext,
    series_list: list[TimeSeries],
    time_shift_unit: str,
    time_shift_start: int,
    time_shift_end: int,
) -> list[TimeSeries]:
    """Draw the series shifted by 0, 1, ... units back, stacked on the current range."""
    if not series_list:
        return []
    shown, seconds = _shift_text(time_shift_unit)
    node = context.arg_nodes["seriesList"]
    first = series_list[0]
    results = []
    for shift in range(int(time_shift_start), int(time_shift_end)):
        delta = seconds * shift
        for series in context.evaluate(
            node, from_s=context.from_s + delta, until_s=context.until_s + delta
        ):
            name = f"timeShift({series.name}, {shown}, {shift})"
            count = min(len(series), len(first) + 1)
            results.append(
                series.derive(
                    name=name,
                    path_expression=name,
                    start=first.start,
                    end=first.start + count * series.step,
                    values=series.values[:count],
                    tags={**series.tags, "timeShiftUnit": shown, "timeShift": shift},
                )
            )
    return results


def constant_line(context: EvalContext, value: float) -> list[TimeSeries]:
    """Draw a line at `value` with three points: from, the midpoint and until."""
    step = max(1, (context.until_s - context.from_s) // 2)
    return [
        build_series(
            str(value),
            context.from_s,
            step,
            np.full(3, float(value)),
            path_expression=f"constantLine({value})",
        )
    ]


def threshold(
    context: EvalContext, value: float, label: str | None, color: str | None
) -> list[TimeSeries]:
    """Draw a constant line, named by `label` when given."""
    (line,) = constant_line(context, value)
    if label:
        line = line.derive(name=label)
    return [line]
