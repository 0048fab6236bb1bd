"""Readings batches decoded straight into numpy columns.

`decode_readings` accepts exactly what `decode(payload, ReadingsBatch, ...)`
accepts and returns the same content, without building a pydantic model and
a tuple per point. A payload that fails any check here, or that needs a
closer look (integers too large for orjson, which it parses as floats), is
handed to `decode`, so a rejection keeps its reason and message.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from citymesh.protocol.messages import (
    MAX_INT_VALUE,
    MAX_SEQUENCE,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    PROTOCOL_VERSION,
    ReadingsBatch,
    decode,
)
from citymesh.protocol.names import is_identifier
from citymesh.protocol.quantities import QUANTITIES

BATCH_KEYS = frozenset({"v", "tenant", "gateway", "site", "seq", "sent_ms", "series"})
SERIES_KEYS = frozenset({"device", "quantity", "points"})
# orjson parses an integer beyond the 64-bit range as a float. A float this
# large may have been such an integer, which ReadingsBatch rejects as a value.
ORJSON_INT_LIMIT = 2.0**63


@dataclass(frozen=True, slots=True)
class SeriesColumns:
    """The points of one sensor of one device, as columns."""

    device: str
    quantity: str
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ReadingsColumns:
    """A validated readings batch (protocol v1) with its points as columns."""

    tenant: str
    gateway: str
    site: str
    seq: int
    sent_ms: int
    series: list[SeriesColumns]

    def point_count(self) -> int:
        """Return the number of points in the batch."""
        return sum(item.timestamps.size for item in self.series)


def decode_readings(payload: bytes, max_bytes: int) -> ReadingsColumns:
    """Parse and validate a readings batch, or raise MessageRejected as `decode`."""
    if len(payload) <= max_bytes:
        try:
            raw = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raw = None
        columns = _columns_of(raw)
        if columns is not None:
            return columns
    # The model raises MessageRejected with the reason for everything the
    # checks above rejected, and whatever it accepts is converted.
    return _from_model(decode(payload, ReadingsBatch, max_bytes))


def _from_model(batch: ReadingsBatch) -> ReadingsColumns:
    series = []
    for item in batch.series:
        # Timestamps lie below 2**53 ms, so float64 represents them exactly.
        points = np.asarray(item.points, dtype=np.float64).reshape(-1, 2)
        series.append(
            SeriesColumns(
                item.device,
                item.quantity,
                points[:, 0].astype(np.int64),
                points[:, 1].copy(),
            )
        )
    return ReadingsColumns(
        batch.tenant, batch.gateway, batch.site, batch.seq, batch.sent_ms, series
    )


def _is_int(value: object) -> bool:
    return type(value) is int


def _columns_of(raw: Any) -> ReadingsColumns | None:
    """Return the batch if `raw` passes every check of ReadingsBatch, else None."""
    if type(raw) is not dict or raw.keys() != BATCH_KEYS:
        return None
    tenant, gateway, site = raw["tenant"], raw["gateway"], raw["site"]
    seq, sent_ms, items = raw["seq"], raw["sent_ms"], raw["series"]

    if not (
        _is_int(raw["v"])
        and raw["v"] == PROTOCOL_VERSION
        and all(type(x) is str and is_identifier(x) for x in (tenant, gateway, site))
        and _is_int(seq)
        and 0 <= seq <= MAX_SEQUENCE
        and _is_int(sent_ms)
        and MIN_TIMESTAMP_MS <= sent_ms <= MAX_TIMESTAMP_MS
        and type(items) is list
        and items
    ):
        return None

    points = _points_of(items)
    if points is None:
        return None
    timestamps, values = points
    series = []
    low = 0
    for item in items:
        high = low + len(item["points"])
        series.append(
            SeriesColumns(
                item["device"],
                item["quantity"],
                timestamps[low:high],
                values[low:high],
            )
        )
        low = high
    return ReadingsColumns(tenant, gateway, site, seq, sent_ms, series)


def _series_valid(item: Any) -> bool:
    if type(item) is not dict or item.keys() != SERIES_KEYS:
        return False
    device, quantity, points = item["device"], item["quantity"], item["points"]
    return (
        type(device) is str
        and is_identifier(device)
        and type(quantity) is str
        and quantity in QUANTITIES
        and type(points) is list
        and len(points) > 0
    )


def _points_of(
    items: list[Any],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """Return the points of every series as two columns, or None if one is invalid.

    The checks run once over the whole batch: map() and set() walk the points
    in C, and numpy checks the ranges.
    """
    if not all(_series_valid(item) for item in items):
        return None
    points = list(itertools.chain.from_iterable(item["points"] for item in items))
    # Every point must be a JSON array of a timestamp (int) and a value (int
    # or float).
    if set(map(type, points)) != {list} or set(map(len, points)) != {2}:
        return None
    flat = list(itertools.chain.from_iterable(points))
    stamps, values = flat[0::2], flat[1::2]
    if set(map(type, stamps)) != {int}:
        return None
    value_types = set(map(type, values))
    if not value_types <= {int, float}:
        return None
    try:
        ts = np.array(stamps, dtype=np.int64)
        column = np.array(values, dtype=np.float64)
    except OverflowError:
        return None
    if int(ts.min()) < MIN_TIMESTAMP_MS or int(ts.max()) > MAX_TIMESTAMP_MS:
        return None
    if not bool(np.isfinite(column).all()):
        return None
    largest = float(np.abs(column).max())
    if largest >= ORJSON_INT_LIMIT:
        return None
    # float64 rounds near 2**53, so integers close to the limit get the
    # model's exact check.
    if int in value_types and largest >= MAX_INT_VALUE:
        return None
    return ts, column
