"""Render functions over time windows: moving windows, summarize and hitcount.

They follow graphite-web 1.1.10. A moving window re-fetches its input from
earlier so that the first point has a full window, and the window ends with
the current point. summarize buckets start at multiples of the interval
(or at the series start), and graphite-web's extra bucket after an aligned
end is kept.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np

from citymesh.query.aggregation import FloatArray, aggregate_buckets
from citymesh.query.registry import EvalContext
from citymesh.query.series import TimeSeries, check_point_count
from citymesh.query.timeparse import parse_interval

logger = logging.getLogger(__name__)


def window_values(
    values: FloatArray, points: int, func: str, x_files_factor: float
) -> FloatArray:
    """Aggregate the `points` values ending at each index from `points` on.

    Returns len(values) - points results: result j covers values[j+1 : j+points+1].
    """
    count = values.size - points
    if count <= 0 or points <= 0:
        return np.full(max(count, 0), np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(values[1:], points)
    valid = ~np.isnan(windows)
    non_null = valid.sum(axis=1)
    enough = (non_null > 0) & (non_null / points >= x_files_factor)
    result = np.full(count, np.nan)
    if func in ("sum", "average"):
        totals = np.where(valid, windows, 0.0).sum(axis=1)
        if func == "average":
            totals = totals / np.maximum(non_null, 1)
        result = totals
    elif func == "min":
        result = np.where(valid, windows, np.inf).min(axis=1)
    elif func == "max":
        result = np.where(valid, windows, -np.inf).max(axis=1)
    elif func == "median" and enough.any():
        result[enough] = np.nanmedian(windows[enough], axis=1)
    return np.where(enough, result, np.nan)


def moving_window(
    context: EvalContext,
    series_list: list[TimeSeries],
    window_size: int | str,
    func: str,
    x_files_factor: float | None,
) -> list[TimeSeries]:
    """Aggregate each point with the points before it over a window."""
    if not series_list:
        return []
    if isinstance(window_size, str):
        preview = parse_interval(window_size)
    else:
        preview = max(series.step for series in series_list) * window_size
    previews = context.evaluate(
        context.arg_nodes["seriesList"], from_s=context.from_s - preview
    )
    tag = "moving" + func.capitalize()
    results = []
    for series in previews:
        if isinstance(window_size, str):
            points = preview // series.step
            name = f'{tag}({series.name},"{window_size}")'
        else:
            points = window_size
            name = f"{tag}({series.name},{window_size})"
        values = window_values(series.values, points, func, x_files_factor or 0.0)
        start = series.start + preview
        results.append(
            series.derive(
                name=name,
                path_expression=name,
                start=start,
                end=start + values.size * series.step,
                values=values,
                tags={**series.tags, tag: window_size},
            )
        )
    return results


def _moving(func: str):  # type: ignore[no-untyped-def]
    def moving(
        context: EvalContext,
        series_list: list[TimeSeries],
        window_size: int | str,
        x_files_factor: float | None,
    ) -> list[TimeSeries]:
        return moving_window(context, series_list, window_size, func, x_files_factor)

    moving.__doc__ = f"Moving {func} over a window of points or an interval."
    return moving


moving_average = _moving("average")
moving_sum = _moving("sum")
moving_min = _moving("min")
moving_max = _moving("max")
moving_median = _moving("median")


def summarize_values(
    series: TimeSeries, func: str, interval: int, start: int, end: int
) -> tuple[FloatArray, int]:
    """Aggregate values into interval buckets from `start`, returning values and end."""
    count = max(0, -(-(end - start) // interval))
    check_point_count(count, f"summarize of {series.name}")
    buckets = (series.timestamps - start) // interval
    inside = (buckets >= 0) & (buckets < count)
    values = aggregate_buckets(series.values[inside], buckets[inside], count, func)
    return values, start + count * interval


def summarize(
    context: EvalContext,
    series_list: list[TimeSeries],
    interval_string: str,
    func: str,
    align_to_from: bool,
) -> list[TimeSeries]:
    """Aggregate each series into buckets of a fixed interval."""
    interval = parse_interval(interval_string)
    results = []
    for series in series_list:
        if align_to_from:
            start, end = series.start, series.end
        else:
            start = series.start - series.start % interval
            end = series.end - series.end % interval + interval
        values, _ = summarize_values(series, func, interval, start, end)
        suffix = ", true" if align_to_from else ""
        name = f'summarize({series.name}, "{interval_string}", "{func}"{suffix})'
        tags = {**series.tags, "summarize": interval_string, "summarizeFunction": func}
        results.append(
            series.derive(
                name=name,
                path_expression=name,
                start=start,
                end=start + values.size * interval,
                step=interval,
                values=values,
                tags=tags,
            )
        )
    return results


_UNIT_RANK = {"s": 0, "min": 1, "h": 2, "d": 3, "w": 4, "mon": 5, "y": 6}


def _align_start(moment: dt.datetime, align_to: str) -> dt.datetime:
    """Truncate a request start to the calendar unit of `align_to`, as graphite-web."""
    letters = "".join(c for c in align_to.lower() if c.isalpha())
    unit = next(
        (
            key
            for key, names in (
                ("y", ("y", "year", "years")),
                ("mon", ("mon", "month", "months")),
                ("w", ("w", "week", "weeks")),
                ("d", ("d", "day", "days")),
                ("h", ("h", "hour", "hours")),
                ("min", ("min", "minute", "minutes")),
                ("s", ("s", "second", "seconds")),
            )
            if letters in names
        ),
        "s",
    )
    zone = moment.tzinfo
    if unit == "y":
        return dt.datetime(moment.year, 1, 1, tzinfo=zone)
    if unit == "mon":
        return dt.datetime(moment.year, moment.month, 1, tzinfo=zone)
    if unit == "w":
        weekday = int(align_to[-1]) if align_to[-1].isdigit() else 1
        back = (moment.isoweekday() - weekday) % 7
        day = dt.datetime(moment.year, moment.month, moment.day, tzinfo=zone)
        return day - dt.timedelta(days=back)
    if unit == "d":
        return dt.datetime(moment.year, moment.month, moment.day, tzinfo=zone)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "min":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


def _aligned_from(context: EvalContext, align_to: str) -> int:
    moment = dt.datetime.fromtimestamp(context.from_s, context.tz)
    aligned = _align_start(moment, align_to)
    # Wall-clock construction in a zone with DST: re-localise like pytz.
    local = aligned.replace(tzinfo=None)
    return int(local.replace(tzinfo=context.tz).timestamp())


def smart_summarize(
    context: EvalContext,
    series_list: list[TimeSeries],
    interval_string: str,
    func: str,
    align_to: str | None,
) -> list[TimeSeries]:
    """Summarize into intervals starting at the request start or a calendar unit."""
    interval = parse_interval(interval_string)
    if align_to:
        from_s = _aligned_from(context, align_to)
        series_list = context.evaluate(context.arg_nodes["seriesList"], from_s=from_s)
    results = []
    for series in series_list:
        values, _ = summarize_values(series, func, interval, series.start, series.end)
        name = f'smartSummarize({series.name}, "{interval_string}", "{func}")'
        tags = {
            **series.tags,
            "smartSummarize": interval_string,
            "smartSummarizeFunction": func,
        }
        results.append(
            series.derive(
                name=name,
                path_expression=name,
                end=series.start + values.size * interval,
                step=interval,
                values=values,
                tags=tags,
            )
        )
    return results


def hit_values(series: TimeSeries, end: int, interval: int) -> tuple[FloatArray, int]:
    """Spread each value times its step over the intervals it overlaps."""
    count = -(-(end - series.start) // interval)
    check_point_count(count, f"hitcount of {series.name}")
    new_start = end - count * interval
    valid = ~np.isnan(series.values)
    values = series.values[valid]
    begin = series.timestamps[valid] - new_start
    finish = begin + series.step
    first, first_mod = np.divmod(begin, interval)
    last, last_mod = np.divmod(finish, interval)
    beyond = last >= count
    last = np.where(beyond, count - 1, last)
    last_mod = np.where(beyond, interval, last_mod)

    totals = np.zeros(count + 1)
    hits = np.zeros(count + 1, dtype=np.int64)
    same = first == last
    ok = same & (first >= 0)
    np.add.at(totals, first[ok], values[ok] * (last_mod[ok] - first_mod[ok]))
    np.add.at(hits, first[ok], 1)
    split = ~same
    head = split & (first >= 0)
    np.add.at(totals, first[head], values[head] * (interval - first_mod[head]))
    np.add.at(hits, first[head], 1)
    # Whole intervals between the first and the last one, by a difference array.
    middle = np.zeros(count + 1)
    middle_hits = np.zeros(count + 1, dtype=np.int64)
    low = np.maximum(first[split] + 1, 0)
    high = last[split]
    spans = low < high
    np.add.at(middle, low[spans], values[split][spans] * interval)
    np.add.at(middle, high[spans], -values[split][spans] * interval)
    np.add.at(middle_hits, low[spans], 1)
    np.add.at(middle_hits, high[spans], -1)
    totals += np.cumsum(middle)
    hits += np.cumsum(middle_hits)
    tail = split & (last_mod > 0)
    np.add.at(totals, last[tail], values[tail] * last_mod[tail])
    np.add.at(hits, last[tail], 1)
    return np.where(hits[:count] > 0, totals[:count], np.nan), new_start


def hitcount(
    context: EvalContext,
    series_list: list[TimeSeries],
    interval_string: str,
    align_to_interval: bool,
) -> list[TimeSeries]:
    """Estimate hits per interval from a rate series (value times seconds)."""
    interval = parse_interval(interval_string)
    ends = {id(series): series.end for series in series_list}
    if align_to_interval:
        unit = "d" if interval >= 86400 else "h" if interval >= 3600 else "min"
        if interval < 60:
            unit = "s"
        from_s = _aligned_from(context, unit) if unit != "s" else context.from_s
        series_list = context.evaluate(context.arg_nodes["seriesList"], from_s=from_s)
        ends = {
            id(s): s.start + (s.end - s.start) // interval * interval + interval
            for s in series_list
        }
    results = []
    for series in series_list:
        values, start = hit_values(series, ends[id(series)], interval)
        suffix = ", true" if align_to_interval else ""
        name = f'hitcount({series.name}, "{interval_string}"{suffix})'
        results.append(
            series.derive(
                name=name,
                path_expression=name,
                start=start,
                end=start + values.size * interval,
                step=interval,
                values=values,
                tags={**series.tags, "hitcount": interval_string},
            )
        )
    return results
