"""Series written straight into a running server's store for the API tests."""

from __future__ import annotations

import time

import numpy as np

from citymesh.storage.base import PointsBlock, SeriesMeta
from tests.conftest import RunningServer

NOW = int(time.time())
# Whole minutes, an hour back, so every point lies inside from=-6h.
BASE = NOW - NOW % 60 - 3600


def _meta(name: str, tags: dict[str, str] | None = None) -> SeriesMeta:
    parts = name.split(";")[0].split(".")
    return SeriesMeta(
        name=name,
        tenant=parts[0],
        site=parts[1],
        gateway=parts[2],
        device=parts[3],
        quantity=parts[4],
        unit="",
        step_s=60,
        tags=tags or {},
    )


def write_points(
    server: RunningServer, name: str, values: list[float | None], **tags: str
) -> None:
    store = server.centre.store
    assert store is not None
    rows = [(BASE + 60 * i, v) for i, v in enumerate(values) if v is not None]
    store.write(
        [
            PointsBlock(
                _meta(name, tags),
                np.array([t * 1000 for t, _ in rows], dtype=np.int64),
                np.array([v for _, v in rows], dtype=np.float64),
            )
        ]
    )
