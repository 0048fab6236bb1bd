"""Deeply nested JSON is rejected as invalid, never crashes the process."""

from __future__ import annotations

import pytest

from citymesh.collector.readings import decode_readings
from citymesh.errors import MessageRejected
from citymesh.protocol.messages import Status, decode
from citymesh.protocol.topology import decode_topology

LIMIT = 1024 * 1024
# 600 kB, under the message size limit: nesting, not size, must stop it.
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
DEEP_ARRAY = b"[" * 300_000 + b"]" * 300_000


@pytest.mark.parametrize("payload", [DEEP_OBJECT, DEEP_ARRAY], ids=["object", "array"])
def test_nested_readings_rejected(payload: bytes) -> None:
    with pytest.raises(MessageRejected) as caught:
        decode_readings(payload, LIMIT)
    assert caught.value.reason == "invalid_json"


@pytest.mark.parametrize("payload", [DEEP_OBJECT, DEEP_ARRAY], ids=["object", "array"])
def test_nested_topology_rejected(payload: bytes) -> None:
    with pytest.raises(MessageRejected) as caught:
        decode_topology(payload, LIMIT)
    assert caught.value.reason == "invalid_json"


def test_nested_status_rejected() -> None:
    with pytest.raises(MessageRejected) as caught:
        decode(DEEP_OBJECT, Status, LIMIT)
    assert caught.value.reason == "invalid_json"
