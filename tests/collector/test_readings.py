"""decode_readings accepts and rejects exactly what the ReadingsBatch model does."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citymesh.collector.readings import ReadingsColumns, decode_readings
from citymesh.errors import MessageRejected
from citymesh.protocol.messages import ReadingsBatch, decode

MAX_BYTES = 1 << 20
BASE_MS = 1_700_000_000_000


def _outcome(payload: bytes) -> tuple[str, Any]:
    """Decode with the model; return ("ok", columns) or ("rejected", reason, detail)."""
    try:
        batch = decode(payload, ReadingsBatch, MAX_BYTES)
    except MessageRejected as exc:
        return "rejected", (exc.reason, exc.detail)
    return "ok", [
        (
            item.device,
            item.quantity,
            [int(ts) for ts, _ in item.points],
            [float(value) for _, value in item.points],
        )
        for item in batch.series
    ]


def _columns_outcome(payload: bytes) -> tuple[str, Any]:
    try:
        batch = decode_readings(payload, MAX_BYTES)
    except MessageRejected as exc:
        return "rejected", (exc.reason, exc.detail)
    assert isinstance(batch, ReadingsColumns)
    for item in batch.series:
        assert item.timestamps.dtype == np.int64
        assert item.values.dtype == np.float64
    return "ok", [
        (item.device, item.quantity, item.timestamps.tolist(), item.values.tolist())
        for item in batch.series
    ]


def _batch(points: list[Any], **changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "v": 1,
        "tenant": "t1",
        "gateway": "gw-1",
        "site": "lab",
        "seq": 7,
        "sent_ms": BASE_MS,
        "series": [{"device": "room-1", "quantity": "co2", "points": points}],
    }
    message.update(changes)
    return message


def _text(message: Any) -> bytes:
    return json.dumps(message).encode()


CASES: dict[str, bytes] = {
    "valid": _text(_batch([[BASE_MS, 412.0], [BASE_MS + 1, 415]])),
    "int value at the limit": _text(_batch([[BASE_MS, 2**53]])),
    "int value past the limit": _text(_batch([[BASE_MS, 2**53 + 1]])),
    "int value past 64 bits": _text(_batch([[BASE_MS, 10**20]])),
    "int value past float range": _text(_batch([[BASE_MS, 10**400]])),
    "large float value": _text(_batch([[BASE_MS, 1e300]])),
    "float timestamp": _text(_batch([[float(BASE_MS), 1.0]])),
    "timestamp before 2000": _text(_batch([[10, 1.0]])),
    "timestamp past 64 bits": _text(_batch([[2**64, 1.0]])),
    "bool value": _text(_batch([[BASE_MS, True]])),
    "string value": _text(_batch([[BASE_MS, "21.5"]])),
    "null value": _text(_batch([[BASE_MS, None]])),
    "three members": _text(_batch([[BASE_MS, 1.0, 2.0]])),
    "point as object": _text(_batch([{"t": BASE_MS, "v": 1.0}])),
    "no points": _text(_batch([])),
    "no series": _text(_batch([], series=[])),
    "extra field": _text({**_batch([[BASE_MS, 1.0]]), "extra": 1}),
    "bool version": _text(_batch([[BASE_MS, 1.0]], v=True)),
    "bool seq": _text(_batch([[BASE_MS, 1.0]], seq=True)),
    "negative seq": _text(_batch([[BASE_MS, 1.0]], seq=-1)),
    "bad site": _text(_batch([[BASE_MS, 1.0]], site="la b")),
    "unknown quantity": _text(_batch([[BASE_MS, 1.0]])).replace(b"co2", b"co3"),
    "NaN": _text(_batch([[BASE_MS, 1.5]])).replace(b"1.5", b"NaN"),
    "Infinity": _text(_batch([[BASE_MS, 1.5]])).replace(b"1.5", b"Infinity"),
    "overflowing float": _text(_batch([[BASE_MS, 1.5]])).replace(b"1.5", b"1e400"),
    "duplicate key": _text(_batch([[BASE_MS, 1.5]])).replace(
        b'"seq": 7', b'"seq": 7, "seq": 8'
    ),
    "lone surrogate": _text(_batch([[BASE_MS, 1.0]], site="\ud800")),
    "not utf-8": b"\xff\xfe",
    "not json": b"this is not json",
    "array": b"[1, 2]",
    "too large": _text(_batch([[BASE_MS + i, 1.0] for i in range(60_000)])),
}


@pytest.mark.parametrize("name", list(CASES))
def test_decode_readings_matches_model(name: str) -> None:
    payload = CASES[name]
    assert _columns_outcome(payload) == _outcome(payload)


json_numbers = (
    st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
    | st.text(max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(
        st.lists(
            st.integers(BASE_MS - 10, BASE_MS + 10**6) | json_numbers,
            min_size=1,
            max_size=3,
        ),
        max_size=4,
    ),
    seq=st.integers(-2, 2**54) | st.booleans(),
    quantity=st.sampled_from(["co2", "temperature", "nope", ""]),
)
def test_decode_readings_matches_model_fuzzed(
    points: list[list[Any]], seq: Any, quantity: str
) -> None:
    message = _batch(points, seq=seq)
    message["series"][0]["quantity"] = quantity
    payload = _text(message)
    assert _columns_outcome(payload) == _outcome(payload)


def test_decode_readings_counts_points() -> None:
    payload = _text(_batch([[BASE_MS, 1.0], [BASE_MS + 60_000, 2.5]]))
    batch = decode_readings(payload, MAX_BYTES)
    assert batch.point_count() == 2
    assert (batch.tenant, batch.gateway, batch.site) == ("t1", "gw-1", "lab")
    assert (batch.seq, batch.sent_ms) == (7, BASE_MS)
