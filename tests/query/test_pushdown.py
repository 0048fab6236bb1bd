"""Aggregations pushed into the store give the same series as the in-Python path.

Every case renders a target twice over the same DuckDB data. The first
render uses the store's bucket aggregation. The second goes through a view
of the store that offers only the plain TimeSeriesStore reads, so the fetch,
the bucketing and the render function run in Python.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from citymesh.errors import QueryError
from citymesh.query.render import consolidate_for_display, evaluate
from citymesh.query.series import TimeSeries
from citymesh.storage.base import (
    BucketReader,
    BucketSpec,
    BucketValues,
    PointsBlock,
    SeriesData,
    SeriesMeta,
)
from citymesh.storage.duckdb_store import DuckDBStore

from .helpers import T0, make_meta

END = T0 + 8 * 86400
NOW = END + 3600
# Neither end is aligned to a minute or an hour, so the first and last
# buckets of every interval are partial.
FROM = END - 2 * 86400 - 37 * 60 + 13
UNTIL = END - 5 * 3600 - 11 * 60 + 29

EXACT_FUNCS = ("min", "max", "last", "current", "first", "count")
SUMMED_FUNCS = ("avg", "average", "sum", "total")


class PlainStore:
    """A view of a store without read_buckets, so queries take the Python path."""

    def __init__(self, inner: DuckDBStore) -> None:
        self._inner = inner

    def find(self, pattern: str) -> list[SeriesMeta]:
        return self._inner.find(pattern)

    def read(
        self,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        resolution_s: int | None = 0,
    ) -> list[SeriesData]:
        return self._inner.read(names, start_ms, end_ms, resolution_s)

    def resolution_for(
        self, name: str, start_ms: int, now_ms: int | None = None
    ) -> int:
        return self._inner.resolution_for(name, start_ms, now_ms)


class CountingStore(PlainStore):
    """A view that aggregates in the store and counts the reads of each kind."""

    def __init__(self, inner: DuckDBStore) -> None:
        super().__init__(inner)
        self.point_reads = 0
        self.bucket_reads = 0
        # When set, read_buckets returns None, as a wrapper of a plain store does.
        self.decline = False

    def read(
        self,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        resolution_s: int | None = 0,
    ) -> list[SeriesData]:
        self.point_reads += 1
        return super().read(names, start_ms, end_ms, resolution_s)

    def read_buckets(
        self, names: Sequence[str], spec: BucketSpec
    ) -> list[BucketValues] | None:
        self.bucket_reads += 1
        if self.decline:
            return None
        return self._inner.read_buckets(names, spec)


def _points(
    rng: np.random.Generator, start: int, end: int, every_ms: int, offset_ms: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    stamps = np.arange(start * 1000 + offset_ms, end * 1000, every_ms, dtype=np.int64)
    values = np.round(20 + np.cumsum(rng.normal(0, 0.2, stamps.size)), 2)
    return stamps, values


def _blocks() -> list[PointsBlock]:
    """Build series with gaps, partial ranges and several points in one slot."""
    rng = np.random.default_rng(20261204)
    begin = END - 3 * 86400
    blocks = []

    stamps, values = _points(rng, begin, END, 60_000)
    keep = rng.random(stamps.size) > 0.1
    hole = (stamps >= (END - 30 * 3600) * 1000) & (stamps < (END - 27 * 3600) * 1000)
    keep &= ~hole
    meta = make_meta("site.a.g1.n1.temp")
    blocks.append(PointsBlock(meta, stamps[keep], values[keep]))

    # Starts after FROM and ends before UNTIL.
    stamps, values = _points(rng, END - 40 * 3600 + 420, END - 9 * 3600 - 300, 60_000)
    blocks.append(PointsBlock(make_meta("site.a.g1.n2.temp"), stamps, values))

    # Every 10 s under a 60 s step: the latest point of each minute counts.
    stamps, values = _points(rng, begin, END, 10_000)
    blocks.append(PointsBlock(make_meta("site.a.g1.n3.temp"), stamps, values))

    # One point a minute, 1.234 s after the minute.
    stamps, values = _points(rng, begin, END, 60_000, offset_ms=1234)
    blocks.append(PointsBlock(make_meta("site.a.g1.n4.temp"), stamps, values))

    # Whole hours and days without points, which become null buckets.
    stamps, values = _points(rng, begin, END, 60_000)
    keep = (rng.random(values.size) > 0.2) & ((stamps // 3_600_000) % 7 != 3)
    keep &= (stamps // 86_400_000) != (END - 86400) // 86400
    blocks.append(
        PointsBlock(make_meta("site.a.g1.n5.temp"), stamps[keep], values[keep])
    )
    return blocks


def _load(store: DuckDBStore, pending: bool) -> None:
    store.write(_blocks())
    store.register([make_meta("site.a.g1.n7.temp")])
    while store.compact():
        pass
    if pending:
        # Rows still in the ingest table replace compacted ones.
        rng = np.random.default_rng(7)
        stamps = np.arange((END - 26 * 3600) * 1000, (END - 20 * 3600) * 1000, 60_000)
        values = np.round(rng.normal(5, 1, stamps.size), 2)
        store.write([PointsBlock(make_meta("site.a.g1.n1.temp"), stamps, values)])
        extra = np.arange((END - 30 * 3600) * 1000, (END - 29 * 3600) * 1000, 30_000)
        store.write(
            [
                PointsBlock(
                    make_meta("site.a.g1.n2.temp"),
                    extra.astype(np.int64),
                    np.round(rng.normal(9, 1, extra.size), 2),
                )
            ]
        )


@pytest.fixture(scope="module", params=["compacted", "pending"])
def loaded(request: pytest.FixtureRequest) -> Iterator[DuckDBStore]:
    """One store whose rows are all compacted, one with rows in ingest as well."""
    opened = DuckDBStore(None)
    _load(opened, request.param == "pending")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def five_minute() -> Iterator[DuckDBStore]:
    """A store with one 1-minute and one 5-minute series under the same glob."""
    opened = DuckDBStore(None)
    rng = np.random.default_rng(5)
    stamps, values = _points(rng, END - 3 * 86400, END, 60_000)
    opened.write([PointsBlock(make_meta("mix.a.g.n1.temp", 60), stamps, values)])
    stamps, values = _points(rng, END - 3 * 86400, END, 300_000)
    opened.write([PointsBlock(make_meta("mix.a.g.n2.temp", 300), stamps, values)])
    yield opened
    opened.close()


def _render(
    store: object, target: str, max_data_points: int | None = None
) -> list[TimeSeries]:
    return evaluate([target], store, FROM, UNTIL, NOW, max_data_points=max_data_points)  # type: ignore[arg-type]


def _assert_same(
    pushed: list[TimeSeries], plain: list[TimeSeries], exact: bool
) -> None:
    assert [s.name for s in pushed] == [s.name for s in plain]
    for got, want in zip(pushed, plain, strict=True):
        assert (got.start, got.end, got.step) == (want.start, want.end, want.step)
        assert got.tags == want.tags
        assert got.path_expression == want.path_expression
        assert got.consolidation_func == want.consolidation_func
        assert np.array_equal(np.isnan(got.values), np.isnan(want.values)), got.name
        if exact:
            np.testing.assert_array_equal(got.values, want.values, err_msg=got.name)
        else:
            np.testing.assert_allclose(
                got.values, want.values, rtol=1e-12, equal_nan=True, err_msg=got.name
            )


@pytest.mark.parametrize("func", EXACT_FUNCS + SUMMED_FUNCS)
@pytest.mark.parametrize("interval", ["1h", "5min", "1d", "2min"])
@pytest.mark.parametrize("align", ["", ", true"])
def test_summarize_pushdown_matches_python(
    loaded: DuckDBStore, func: str, interval: str, align: str
) -> None:
    target = f'summarize(site.a.g1.*.temp, "{interval}", "{func}"{align})'
    pushed = _render(loaded, target)
    plain = _render(PlainStore(loaded), target)
    assert len(pushed) == 6
    _assert_same(pushed, plain, exact=func in EXACT_FUNCS)


def test_summarize_pushdown_reads_no_points(loaded: DuckDBStore) -> None:
    counting = CountingStore(loaded)
    assert isinstance(counting, BucketReader)
    _render(counting, 'summarize(site.a.g1.*.temp, "1h", "avg")')
    assert counting.point_reads == 0
    assert counting.bucket_reads == 1


@pytest.mark.parametrize(
    "target",
    [
        'summarize(site.a.g1.*.temp, "1h", "median")',
        'summarize(site.a.g1.*.temp, "90s", "avg")',
        'summarize(scale(site.a.g1.*.temp, 2), "1h", "avg")',
    ],
)
def test_summarize_pushdown_falls_back(loaded: DuckDBStore, target: str) -> None:
    counting = CountingStore(loaded)
    pushed = _render(counting, target)
    assert counting.bucket_reads == 0
    assert counting.point_reads > 0
    _assert_same(pushed, _render(PlainStore(loaded), target), exact=True)


def test_summarize_pushdown_needs_whole_steps(five_minute: DuckDBStore) -> None:
    # 2min is a multiple of the 1-minute step but not of the 5-minute one.
    for interval in ("2min", "10min", "1h"):
        target = f'summarize(mix.a.g.*.temp, "{interval}", "max")'
        pushed = _render(five_minute, target)
        _assert_same(pushed, _render(PlainStore(five_minute), target), exact=True)


def test_summarize_pushdown_before_data(loaded: DuckDBStore) -> None:
    target = 'summarize(site.a.g1.*.temp, "1h", "sum")'
    pushed = evaluate([target], loaded, T0, T0 + 86400, NOW)
    plain = evaluate([target], PlainStore(loaded), T0, T0 + 86400, NOW)  # type: ignore[arg-type]
    _assert_same(pushed, plain, exact=True)
    assert all(np.isnan(series.values).all() for series in pushed)


@pytest.mark.parametrize("max_data_points", [1, 2, 7, 100, 719, 5000])
@pytest.mark.parametrize(
    "target",
    [
        "site.a.g1.*.temp",
        'consolidateBy(site.a.g1.*.temp, "max")',
        'consolidateBy(site.a.g1.*.temp, "min")',
        'consolidateBy(site.a.g1.*.temp, "sum")',
        'consolidateBy(site.a.g1.*.temp, "first")',
        'consolidateBy(site.a.g1.*.temp, "last")',
    ],
)
def test_max_data_points_pushdown_matches_python(
    loaded: DuckDBStore, target: str, max_data_points: int
) -> None:
    pushed = _render(loaded, target, max_data_points)
    plain = consolidate_for_display(
        _render(PlainStore(loaded), target), max_data_points
    )
    exact = "sum" not in target and target != "site.a.g1.*.temp"
    _assert_same(pushed, plain, exact=exact)


@pytest.mark.parametrize("max_data_points", [3, 50, 400])
def test_max_data_points_pushdown_mixed_steps(
    five_minute: DuckDBStore, max_data_points: int
) -> None:
    targets = ["mix.a.g.n2.temp", 'consolidateBy(mix.a.g.n1.temp, "max")']
    pushed = evaluate(
        targets, five_minute, FROM, UNTIL, NOW, max_data_points=max_data_points
    )
    plain = consolidate_for_display(
        evaluate(targets, PlainStore(five_minute), FROM, UNTIL, NOW),  # type: ignore[arg-type]
        max_data_points,
    )
    _assert_same(pushed, plain, exact=False)


def test_max_data_points_other_functions_in_python(loaded: DuckDBStore) -> None:
    counting = CountingStore(loaded)
    target = "scale(site.a.g1.n1.temp, 3)"
    pushed = _render(counting, target, 50)
    assert counting.bucket_reads == 0
    plain = consolidate_for_display(_render(PlainStore(loaded), target), 50)
    _assert_same(pushed, plain, exact=True)


def test_max_data_points_month_of_seconds() -> None:
    """A month of 1-second points is consolidated in the store, not rejected."""
    store = DuckDBStore(None)
    try:
        start = T0
        until = T0 + 30 * 86400
        stamps = np.arange(start, until, dtype=np.int64)
        keep = (stamps % 86400) >= 3600  # the first hour of each day is missing
        values = np.sin(stamps / 5000.0).round(3)
        meta = make_meta("month.a.g.n.temp", step=1)
        store.write([PointsBlock(meta, stamps[keep] * 1000, values[keep])])
        now = until + 60

        with pytest.raises(QueryError, match="more than the limit"):
            evaluate(["month.a.g.n.temp"], store, start, until, now)

        for target, func in (
            ("month.a.g.n.temp", "average"),
            ('consolidateBy(month.a.g.n.temp, "max")', "max"),
        ):
            (pushed,) = evaluate(
                [target], store, start, until, now, max_data_points=1000
            )
            # The expected series places the same points on the 1 s grid
            # whisper uses for (start, until] and consolidates it in Python.
            grid = np.full(until - start, np.nan)
            inside = keep & (stamps > start)
            grid[stamps[inside] - start - 1] = values[inside]
            full = TimeSeries(
                name=pushed.name,
                path_expression=pushed.path_expression,
                start=start + 1,
                end=until + 1,
                step=1,
                values=grid,
                tags=pushed.tags,
                consolidation_func=func,
            )
            (want,) = consolidate_for_display([full], 1000)
            assert len(pushed) <= 1000
            assert (pushed.start, pushed.end, pushed.step) == (
                want.start,
                want.end,
                want.step,
            )
            np.testing.assert_allclose(
                pushed.values, want.values, rtol=1e-12, equal_nan=True
            )
    finally:
        store.close()


def test_pushdown_declined_reads_points(loaded: DuckDBStore) -> None:
    counting = CountingStore(loaded)
    counting.decline = True
    for target, max_data_points in (
        ('summarize(site.a.g1.*.temp, "1h", "max")', None),
        ("site.a.g1.*.temp", 100),
    ):
        pushed = _render(counting, target, max_data_points)
        plain = _render(PlainStore(loaded), target, max_data_points)
        assert counting.point_reads > 0
        _assert_same(pushed, plain, exact=True)
