"""Rollups, xFilesFactor, expiry and rule changes of the DuckDB store."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from citymesh.errors import ConfigError
from citymesh.query.render import evaluate
from citymesh.storage.base import PointsBlock, SeriesMeta
from citymesh.storage.duckdb_store import DuckDBStore
from citymesh.storage.retention import (
    Aggregation,
    Archive,
    RetentionRules,
    Schema,
    parse_archives,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# 2023-11-14 00:00:00 UTC, a whole day.
T0 = 1_699_920_000_000


def rules(
    retentions: str, method: str = "average", factor: float = 0.5
) -> RetentionRules:
    """Return rules giving every series `retentions` and one aggregation."""
    return RetentionRules.build(
        [Schema("all", ".*", parse_archives(retentions))],
        [Aggregation("all", ".*", method, factor)],
    )


def meta(name: str) -> SeriesMeta:
    """Return the metadata of a carbon-like series."""
    return SeriesMeta(name, "t", "", "", "", "", "", 60, {})


def write_minutes(
    store: DuckDBStore, name: str, start_ms: int, values: list[float]
) -> None:
    """Write one point per minute from start_ms; NaN leaves the minute empty."""
    stamps = start_ms + 60_000 * np.arange(len(values), dtype=np.int64)
    array = np.array(values, dtype=np.float64)
    keep = ~np.isnan(array)
    store.write([PointsBlock(meta(name), stamps[keep], array[keep])])


def rollup(store: DuckDBStore, name: str, step_s: int) -> list[tuple[int, float]]:
    """Return the (offset from T0 in minutes, value) rows of one rollup."""
    (data,) = store.read([name], 0, 2**62, resolution_s=step_s)
    return [
        ((t - T0) // 60_000, v)
        for t, v in zip(data.timestamps.tolist(), data.values.tolist(), strict=True)
    ]


def test_parse_archives_units_and_points() -> None:
    assert parse_archives("1m:30d,10m:1y,1h:10y") == (
        Archive(60, 30 * 86400),
        Archive(600, 365 * 86400),
        Archive(3600, 3650 * 86400),
    )
    # A bare retention counts points, as in storage-schemas.conf.
    assert parse_archives("60:1440") == (Archive(60, 86400),)


@pytest.mark.parametrize(
    "text",
    ["1m", "10m:30d,15m:1y", "1m:30d,10m:1d", "1x:1d", "0s:1d"],
)
def test_parse_archives_rejects_invalid(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_archives(text)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("average", [(0, 4.5), (10, 14.5)]),
        ("sum", [(0, 45.0), (10, 145.0)]),
        ("min", [(0, 0.0), (10, 10.0)]),
        ("max", [(0, 9.0), (10, 19.0)]),
        ("last", [(0, 9.0), (10, 19.0)]),
    ],
)
def test_rollup_exact_values(method: str, expected: list[tuple[int, float]]) -> None:
    store = DuckDBStore(None, rules("1m:1d,10m:30d,1h:1y", method))
    write_minutes(store, "a.b", T0, [float(i) for i in range(20)])
    store.maintain(T0 + HOUR_MS)
    assert rollup(store, "a.b", 600) == expected
    hour = {"average": 9.5, "sum": 190.0, "min": 0.0, "max": 19.0, "last": 19.0}
    # 2 of 6 ten-minute buckets hold values: below the factor of 0.5 for the
    # hour, except that sum and the rest follow the same rule.
    assert rollup(store, "a.b", 3600) == []
    store.close()
    store = DuckDBStore(None, rules("1m:1d,10m:30d,1h:1y", method, 0.3))
    write_minutes(store, "a.b", T0, [float(i) for i in range(20)])
    store.maintain(T0 + HOUR_MS)
    assert rollup(store, "a.b", 3600) == [(0, hour[method])]
    store.close()


def test_rollup_x_files_factor_boundary() -> None:
    store = DuckDBStore(None, rules("1m:1d,10m:30d", "average", 0.3))
    # Bucket 0 has 3 of 10 minutes (0.3, kept); bucket 10 has 2 (0.2, dropped).
    values = [1.0, 2.0, 3.0] + [float("nan")] * 7 + [5.0, 7.0] + [float("nan")] * 8
    write_minutes(store, "a.b", T0, values)
    store.maintain(T0 + HOUR_MS)
    assert rollup(store, "a.b", 600) == [(0, 2.0)]
    store.close()


def test_rollup_last_write_wins_and_late_points() -> None:
    store = DuckDBStore(None, rules("1m:1d,10m:30d", "sum", 0.0))
    write_minutes(store, "a.b", T0, [1.0] * 10)
    store.maintain(T0 + HOUR_MS)
    assert rollup(store, "a.b", 600) == [(0, 10.0)]
    # Rewriting a minute replaces it, so the sum does not double count.
    write_minutes(store, "a.b", T0, [5.0])
    write_minutes(store, "a.b", T0 + 60_000, [5.0])
    store.maintain(T0 + HOUR_MS)
    assert rollup(store, "a.b", 600) == [(0, 18.0)]
    (raw,) = store.read(["a.b"], T0, T0 + HOUR_MS)
    assert raw.values.tolist() == [5.0, 5.0] + [1.0] * 8
    store.close()


def test_expiry_drops_raw_keeps_rollups() -> None:
    store = DuckDBStore(None, rules("1m:1d,10m:30d,1h:1y", "average", 0.0))
    write_minutes(store, "a.b", T0, [float(i) for i in range(120)])
    store.maintain(T0 + HOUR_MS)
    store.maintain(T0 + 2 * DAY_MS)
    assert store.count_points() == 0
    assert rollup(store, "a.b", 600)[0] == (0, 4.5)
    assert len(rollup(store, "a.b", 600)) == 12
    assert rollup(store, "a.b", 3600) == [(0, 29.5), (60, 89.5)]
    store.maintain(T0 + 60 * DAY_MS)
    assert rollup(store, "a.b", 600) == []
    assert rollup(store, "a.b", 3600) == [(0, 29.5), (60, 89.5)]
    store.close()


def test_rule_change_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path, rules("1m:1d,10m:30d", "sum", 0.0))
    write_minutes(store, "a.b", T0, [1.0] * 120)
    store.maintain(T0 + HOUR_MS)
    store.maintain(T0 + 2 * DAY_MS)
    assert store.count_points() == 0
    store.close()

    # The new rule drops the 10-minute archive and adds an hourly one, which
    # is backfilled from the 10-minute rollup, since raw points are gone.
    store = DuckDBStore(path, rules("1m:1d,1h:1y", "sum", 0.0))
    assert len(rollup(store, "a.b", 600)) == 12
    store.maintain(T0 + 2 * DAY_MS)
    assert rollup(store, "a.b", 3600) == [(0, 60.0), (60, 60.0)]
    # The 10-minute rollup is no longer in the rule but is kept for the
    # rule's longest retention.
    assert len(rollup(store, "a.b", 600)) == 12
    store.close()

    # Lengthening raw retention later loses nothing either.
    store = DuckDBStore(path, rules("1m:30d,1h:1y", "sum", 0.0))
    store.maintain(T0 + 2 * DAY_MS)
    assert rollup(store, "a.b", 3600) == [(0, 60.0), (60, 60.0)]
    store.close()


def test_rule_change_backfills_from_raw(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    write_minutes(store, "a.b", T0, [2.0] * 30)
    store.close()
    store = DuckDBStore(path, rules("1m:1d,10m:30d", "max", 0.0))
    store.maintain(T0 + HOUR_MS)
    assert rollup(store, "a.b", 600) == [(0, 2.0), (10, 2.0), (20, 2.0)]
    assert store.count_points() == 30
    store.close()


def test_resolution_for_picks_finest_covering() -> None:
    store = DuckDBStore(None, rules("1m:1d,10m:30d,1h:1y"))
    now = T0 + 400 * DAY_MS
    assert store.resolution_for("a.b", now - HOUR_MS, now) == 0
    assert store.resolution_for("a.b", now - DAY_MS, now) == 0
    assert store.resolution_for("a.b", now - 2 * DAY_MS, now) == 600
    assert store.resolution_for("a.b", now - 300 * DAY_MS, now) == 3600
    # Older than every archive: the coarsest, as whisper returns.
    assert store.resolution_for("a.b", now - 2000 * DAY_MS, now) == 3600
    store.close()


def test_read_covering_resolution() -> None:
    store = DuckDBStore(None, rules("1m:1d,10m:30d", "average", 0.0))
    start = time.time_ns() // 1_000_000 // HOUR_MS * HOUR_MS - HOUR_MS
    write_minutes(store, "a.b", start, [float(i) for i in range(20)])
    store.maintain(start + HOUR_MS)
    (recent,) = store.read(["a.b"], start, start + HOUR_MS, resolution_s=None)
    assert recent.resolution_s == 0
    assert recent.values.size == 20
    week_ago = start - 7 * DAY_MS
    (old,) = store.read(["a.b"], week_ago, start + HOUR_MS, resolution_s=None)
    assert old.resolution_s == 600
    assert old.values.tolist() == [4.5, 14.5]
    store.close()


def test_series_without_rule_keep_everything() -> None:
    store = DuckDBStore(None)
    write_minutes(store, "a.b", T0, [1.0, 2.0])
    result = store.maintain(T0 + 1000 * DAY_MS)
    assert result.expired == 0
    assert store.count_points() == 2
    assert store.resolution_for("a.b", 0) == 0
    store.close()


def test_render_reads_rollup_for_old_range() -> None:
    store = DuckDBStore(None, rules("1m:1d,10m:30d", "average", 0.0))
    start = time.time_ns() // 1_000_000 // HOUR_MS * HOUR_MS - HOUR_MS
    write_minutes(store, "a.b", start, [float(i) for i in range(20)])
    store.maintain(start + HOUR_MS)
    start_s, end_s = start // 1000, (start + HOUR_MS) // 1000

    (recent,) = evaluate(["a.b"], store, start_s - 60, end_s)
    assert recent.step == 60
    assert [v for v in recent.values.tolist() if v == v] == [
        float(i) for i in range(20)
    ]

    # A week back lies beyond the raw archive's day, so the 10-minute rollup
    # is read and the series comes back at its step.
    (old,) = evaluate(["a.b"], store, start_s - 7 * 86_400, end_s)
    assert old.step == 600
    assert [v for v in old.values.tolist() if v == v] == [4.5, 14.5]
    store.close()
