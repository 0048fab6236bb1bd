"""Tests for target evaluation, bucket boundaries, maxDataPoints and formats."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from citymesh.data import data_dir
from citymesh.errors import QueryError
from citymesh.query.render import consolidate_for_display, evaluate, to_csv, to_json
from citymesh.query.series import bucket_points, grid_bounds
from citymesh.storage.base import PointsBlock, SeriesData
from citymesh.storage.duckdb_store import DuckDBStore

from .conftest import WritePoints
from .helpers import T0, as_list, make_meta, make_series

# Fetch boundaries


def test_grid_bounds_mid_bucket() -> None:
    # whisper starts after the bucket holding `from` and ends with `until`'s.
    assert grid_bounds(T0 + 30, T0 + 150, 60) == (T0 + 60, T0 + 180)


def test_grid_bounds_aligned() -> None:
    assert grid_bounds(T0, T0 + 120, 60) == (T0 + 60, T0 + 180)


def test_fetch_starts_after_bucket_containing_from(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points(
        "a.b.c",
        {T0 + 10: 1.0, T0 + 50: 2.0, T0 + 61: 4.0, T0 + 170: 3.0, T0 + 180: 98.0},
    )
    (series,) = evaluate(["a.b.c"], store, T0 + 30, T0 + 150)
    assert (series.start, series.end, series.step) == (T0 + 60, T0 + 180, 60)
    # Bucket T0+120 contains until and is read whole, so T0+170 counts.
    assert as_list(series.values) == [4.0, 3.0]


def test_fetch_aligned_range_includes_until(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.b.c", {T0 - 60: 9.0, T0: 1.0, T0 + 60: 2.0, T0 + 120: 3.0})
    (series,) = evaluate(["a.b.c"], store, T0, T0 + 120)
    assert series.timestamps.tolist() == [T0 + 60, T0 + 120]
    assert as_list(series.values) == [2.0, 3.0]


def test_fetch_stops_at_now(store: DuckDBStore, write_points: WritePoints) -> None:
    write_points("a.b.c", {T0 + 60: 1.0, T0 + 120: 2.0, T0 + 180: 3.0})
    (series,) = evaluate(["a.b.c"], store, T0, T0 + 600, now=T0 + 130)
    assert series.timestamps.tolist() == [T0 + 60, T0 + 120]


def test_fetch_latest_timestamp_wins_regardless_of_write_order(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.b.c", {T0 + 59.5: 5.0})
    write_points("a.b.c", {T0 + 0.25: 4.0, T0 + 30: 6.0})
    (series,) = evaluate(["a.b.c"], store, T0 - 60, T0)
    assert as_list(series.values) == [5.0]


def test_bucket_points_unsorted_input() -> None:
    data = SeriesData(
        make_meta("a.b.c"),
        np.array(
            [(T0 + 70) * 1000, (T0 + 10) * 1000, (T0 + 65) * 1000], dtype=np.int64
        ),
        np.array([3.0, 1.0, 2.0]),
    )
    assert as_list(bucket_points(data, T0, T0 + 180, 60)) == [1.0, 3.0, None]


def test_fetch_series_without_points_in_range(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.b.c", {T0 - 3600: 1.0})
    (series,) = evaluate(["a.b.c"], store, T0, T0 + 180)
    assert as_list(series.values) == [None, None, None]
    assert series.tags == {"name": "a.b.c"}


def test_fetch_unknown_path_is_empty(store: DuckDBStore) -> None:
    assert evaluate(["no.such.series"], store, T0, T0 + 60) == []


def test_fetch_glob_keeps_each_step_and_tags(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.fast.c", {T0 + 30: 1.0, T0 + 90: 2.0}, step=60, tags={"unit": "C"})
    write_points("a.slow.c", {T0 + 30: 7.0}, step=600)
    fast, slow = evaluate(["a.*.c"], store, T0 - 1, T0 + 119)
    assert (fast.name, fast.step, as_list(fast.values)) == ("a.fast.c", 60, [1.0, 2.0])
    assert (slow.name, slow.step, as_list(slow.values)) == ("a.slow.c", 600, [7.0])
    assert fast.path_expression == "a.*.c"
    assert fast.tags == {"unit": "C", "name": "a.fast.c"}


# evaluate()


def test_evaluate_keeps_target_order(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.b.c", {T0: 1.0})
    write_points("x.y.z", {T0: 2.0})
    names = [s.name for s in evaluate(["x.y.z", "", "a.b.c"], store, T0, T0 + 60)]
    assert names == ["x.y.z", "a.b.c"]


def test_evaluate_rejects_empty_range(store: DuckDBStore) -> None:
    with pytest.raises(QueryError, match=r"from \(100\) must be before until \(100\)"):
        evaluate(["a.b.c"], store, 100, 100)


def test_evaluate_rejects_literal_target(store: DuckDBStore) -> None:
    with pytest.raises(QueryError, match="expected a path or a function call"):
        evaluate(["'text'"], store, T0, T0 + 60)


def test_evaluate_rejects_bad_max_data_points(store: DuckDBStore) -> None:
    series = make_series("a", T0, 60, [1.0])
    with pytest.raises(QueryError, match="invalid maxDataPoints 0"):
        consolidate_for_display([series], 0)


def test_evaluate_invalid_glob_raises(store: DuckDBStore) -> None:
    with pytest.raises(QueryError):
        evaluate(["a..b"], store, T0, T0 + 60)


# maxDataPoints


def test_max_data_points_nudges_start_like_graphite() -> None:
    # 11 points over 660 s with maxDataPoints 4: 3 values a point. The start
    # moves to the next multiple of 180 s and, as in graphite-web, one value
    # fewer than the move is dropped, so values are stamped one step early.
    series = make_series("a", T0 + 60, 60, [float(m) for m in range(11)])
    (result,) = consolidate_for_display([series], 4)
    assert result.step == 180
    assert result.start == T0 + 180
    assert as_list(result.values) == [2.0, 5.0, 8.0, 10.0]


def test_max_data_points_all_null_run() -> None:
    series = make_series("a", T0, 60, [None, None, None, None, 1, None])
    (result,) = consolidate_for_display([series], 2)
    assert result.step == 180
    # The nudge drops two leading nulls, so the run holding 1 comes first.
    assert as_list(result.values) == [1.0, None]


def test_max_data_points_one_point() -> None:
    series = make_series("a", T0, 60, [1.0, 2.0, None, 3.0])
    (result,) = consolidate_for_display([series], 1)
    assert (result.start, result.step) == (T0, 240)
    assert as_list(result.values) == [2.0]


def test_max_data_points_uses_consolidation_func() -> None:
    series = make_series("a", T0, 60, [1.0, 5.0, 2.0, 4.0]).derive(
        consolidation_func="max"
    )
    (result,) = consolidate_for_display([series], 1)
    assert as_list(result.values) == [5.0]


def test_max_data_points_not_needed() -> None:
    series = make_series("a", T0, 60, [1.0] * 5)
    assert consolidate_for_display([series], 5) == [series]


# Formats


def test_to_json_datapoints_and_nulls() -> None:
    series = make_series("a.b.c", T0, 60, [1, None, math.inf], tags={"unit": "C"})
    assert to_json([series]) == [
        {
            "target": "a.b.c",
            "tags": {"name": "a.b.c", "unit": "C"},
            "datapoints": [[1.0, T0], [None, T0 + 60], [None, T0 + 120]],
        }
    ]


def test_to_csv_rows() -> None:
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    series = make_series("a.b.c", start, 60, [1.5, None])
    other = make_series("sumSeries(a,b)", start, 3600, [2])
    assert to_csv([series, other]) == (
        "a.b.c,2024-01-01 00:00:00,1.5\r\n"
        "a.b.c,2024-01-01 00:01:00,\r\n"
        '"sumSeries(a,b)",2024-01-01 00:00:00,2.0\r\n'
    )


def test_to_csv_in_time_zone() -> None:
    start = int(datetime(2024, 7, 1, tzinfo=UTC).timestamp())
    series = make_series("a", start, 60, [1])
    assert to_csv([series], "Europe/Berlin") == "a,2024-07-01 02:00:00,1.0\r\n"


def test_to_csv_empty() -> None:
    assert to_csv([]) == ""


# Real data: the UCI occupancy recording, stored and summarised hourly.


def _occupancy_rows() -> list[tuple[int, float]]:
    path = Path(data_dir()) / "occupancy_uci" / "datatest.txt"
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        column = header.index("Temperature") + 1  # rows carry a leading row number
        rows = []
        for row in reader:
            moment = datetime.strptime(row[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            rows.append((int(moment.timestamp()), float(row[column])))
    return rows


def test_summarize_occupancy_temperature_hourly(store: DuckDBStore) -> None:
    rows = _occupancy_rows()
    meta = make_meta("uci.umons.gw-1.room.temperature", step=60)
    store.write(
        [
            PointsBlock(
                meta,
                np.array([t * 1000 for t, _ in rows], dtype=np.int64),
                np.array([v for _, v in rows]),
            )
        ]
    )
    # whisper's grid starts after the bucket holding `from`.
    from_s = rows[0][0] - 60
    until_s = rows[-1][0] + 1

    # Expected values by hand: per minute the latest reading wins, then
    # each clock hour averages its minutes.
    per_minute: dict[int, float] = {}
    for stamp, value in sorted(rows):
        per_minute[stamp // 60 * 60] = value
    per_hour: dict[int, list[float]] = {}
    for minute, value in per_minute.items():
        per_hour.setdefault(minute // 3600 * 3600, []).append(value)

    (series,) = evaluate(
        ['summarize(uci.umons.gw-1.room.temperature, "1h", "avg")'],
        store,
        from_s,
        until_s,
    )
    assert series.step == 3600
    expected = [
        sum(per_hour[hour]) / len(per_hour[hour]) if hour in per_hour else None
        for hour in series.timestamps.tolist()
    ]
    assert len(expected) == len(per_hour)
    assert as_list(series.values) == pytest.approx(expected)
    # The recording has seconds-jittered timestamps (14:19:00 then 14:19:59),
    # so some minutes hold two readings and only the later one counts.
    assert len(per_minute) < len(rows)


def test_evaluate_rejects_too_many_points(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.b.c", {T0: 1.0})
    with pytest.raises(
        QueryError, match="would hold 1000001 points, more than the limit"
    ):
        evaluate(["a.b.c"], store, T0, T0 + 60 * 1_000_001)
    (series,) = evaluate(["a.b.c"], store, T0, T0 + 60 * 1_000_000)
    assert len(series) == 1_000_000
