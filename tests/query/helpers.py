"""Helpers shared by the query tests."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from citymesh.query.series import TimeSeries
from citymesh.storage.base import SeriesMeta

# 2023-11-14 22:00:00 UTC, a multiple of 3600 and so of every step used here.
T0 = 1_700_000_000 - 1_700_000_000 % 3600


def make_meta(
    name: str, step: int = 60, tags: Mapping[str, str] | None = None
) -> SeriesMeta:
    """Build series metadata from a dotted name of five or more nodes."""
    parts = (name.split(".") + ["x"] * 5)[:5]
    return SeriesMeta(
        name=name,
        tenant=parts[0],
        site=parts[1],
        gateway=parts[2],
        device=parts[3],
        quantity=parts[4],
        unit="",
        step_s=step,
        tags=dict(tags or {}),
    )


def make_series(
    name: str,
    start: int,
    step: int,
    values: list[float | None],
    path_expression: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> TimeSeries:
    """Build a TimeSeries from a list with None for null."""
    array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return TimeSeries(
        name=name,
        path_expression=path_expression or name,
        start=start,
        end=start + step * len(values),
        step=step,
        values=array,
        tags={"name": name, **(tags or {})},
    )


def as_list(values: np.ndarray) -> list[float | None]:
    """Turn a values array into a list with None for NaN, for exact asserts."""
    return [None if np.isnan(v) else float(v) for v in values.tolist()]
