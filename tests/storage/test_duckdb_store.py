"""Reads of the DuckDB store: row order, pending ingest rows, prefix listings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from citymesh.storage.base import SeriesMeta
from citymesh.storage.duckdb_store import DuckDBStore

MINUTE_MS = 60_000


def meta(name: str) -> SeriesMeta:
    parts = name.split(".")
    return SeriesMeta(name, parts[0], parts[1], parts[2], parts[3], parts[4], "C")


def append(
    store: DuckDBStore, name: str, minutes: list[int], values: list[float]
) -> None:
    series_id = int(store.register([meta(name)])[0])
    store.append(
        np.full(len(minutes), series_id, np.int32),
        np.array(minutes, np.int64) * MINUTE_MS,
        np.array(values, np.float64),
    )


def drain(store: DuckDBStore, max_rows: int) -> None:
    while store.compact(max_rows):
        pass


def test_read_out_of_order_compactions_sorted() -> None:
    store = DuckDBStore(None)
    # Later minutes compacted first, then earlier ones, in small steps, so the
    # points table holds several runs of each series in no time order.
    append(store, "t.s.g.a.x", [10, 11, 12], [10.0, 11.0, 12.0])
    append(store, "t.s.g.b.x", [5, 6], [5.0, 6.0])
    drain(store, 2)
    append(store, "t.s.g.a.x", [1, 2, 11], [1.0, 2.0, 110.0])
    append(store, "t.s.g.b.x", [7, 1], [7.0, 1.0])
    drain(store, 3)
    data = store.read(["t.s.g.b.x", "t.s.g.a.x"], 0, 20 * MINUTE_MS)
    assert [d.series.name for d in data] == ["t.s.g.b.x", "t.s.g.a.x"]
    assert data[0].timestamps.tolist() == [m * MINUTE_MS for m in (1, 5, 6, 7)]
    assert data[0].values.tolist() == [1.0, 5.0, 6.0, 7.0]
    assert data[1].timestamps.tolist() == [m * MINUTE_MS for m in (1, 2, 10, 11, 12)]
    assert data[1].values.tolist() == [1.0, 2.0, 10.0, 110.0, 12.0]


def test_read_sees_pending_then_compacted(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    append(store, "t.s.g.a.x", [1, 2], [1.0, 2.0])
    drain(store, 10)
    append(store, "t.s.g.a.x", [2, 3], [20.0, 3.0])
    pending = store.read(["t.s.g.a.x"], 0, 10 * MINUTE_MS)[0]
    assert pending.values.tolist() == [1.0, 20.0, 3.0]
    store.close()
    # A reopened store finds the uncompacted rows in the ingest table.
    reopened = DuckDBStore(path)
    assert reopened.read(["t.s.g.a.x"], 0, 10 * MINUTE_MS)[0].values.tolist() == [
        1.0,
        20.0,
        3.0,
    ]
    drain(reopened, 10)
    append(reopened, "t.s.g.a.x", [4], [4.0])
    after = reopened.read(["t.s.g.a.x"], 0, 10 * MINUTE_MS)[0]
    assert after.values.tolist() == [1.0, 20.0, 3.0, 4.0]
    reopened.close()


def test_series_prefix_and_new_names() -> None:
    store = DuckDBStore(None)
    for name in ("t.s.g.b.x", "t.s.g.a.x", "t.s2.g.a.x", "u.s.g.a.x"):
        append(store, name, [1], [1.0])
    assert [m.name for m in store.series(prefix="t.s.")] == ["t.s.g.a.x", "t.s.g.b.x"]
    append(store, "t.s.g.aa.x", [1], [1.0])
    assert [m.name for m in store.series(prefix="t.s.")] == [
        "t.s.g.a.x",
        "t.s.g.aa.x",
        "t.s.g.b.x",
    ]
    assert len(store.series()) == 5
    assert [m.name for m in store.find("t.s*.g.a.x")] == ["t.s.g.a.x", "t.s2.g.a.x"]
    assert [m.name for m in store.find("t.s.g.a.x")] == ["t.s.g.a.x"]
    assert store.find("t.s.g.zz.x") == []
