"""Fixtures for query tests: an in-memory DuckDB store and point writers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pytest

from citymesh.storage.base import PointsBlock, SeriesMeta
from citymesh.storage.duckdb_store import DuckDBStore

from .helpers import make_meta

WritePoints = Callable[..., SeriesMeta]


@pytest.fixture
def store() -> Iterator[DuckDBStore]:
    """A real DuckDB store in memory."""
    opened = DuckDBStore(None)
    yield opened
    opened.close()


@pytest.fixture
def write_points(store: DuckDBStore) -> WritePoints:
    """Write {epoch seconds: value} points of one series into the store."""

    def write(
        name: str,
        points: Mapping[float, float],
        step: int = 60,
        tags: Mapping[str, str] | None = None,
    ) -> SeriesMeta:
        meta = make_meta(name, step, tags)
        stamps = np.array([round(t * 1000) for t in points], dtype=np.int64)
        values = np.array(list(points.values()), dtype=np.float64)
        store.write([PointsBlock(meta, stamps, values)])
        return meta

    return write
