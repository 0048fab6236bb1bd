"""The collector rejects and counts bad messages and stores the good ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from citymesh.gateway.sources import open_source
from citymesh.protocol.topics import Channel, topic_for
from tests.conftest import RunningServer

GATEWAY = "gw-bad"


def _real_points(count: int) -> list[list[float]]:
    """CO2 readings of the UCI room as [timestamp_ms, value] pairs."""
    readings = [
        r
        for r in open_source("occupancy", limit=count).readings()
        if r.quantity == "co2"
    ]
    return [[r.timestamp_ms, r.value] for r in readings]


def _batch(
    tenant: str, seq: int, points: list[list[float]], **changes: Any
) -> dict[str, Any]:
    batch: dict[str, Any] = {
        "v": 1,
        "tenant": tenant,
        "gateway": GATEWAY,
        "site": "lab",
        "seq": seq,
        "sent_ms": 1_700_000_000_000,
        "series": [{"device": "room-1", "quantity": "co2", "points": points}],
    }
    batch.update(changes)
    return batch


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def test_collector_rejects_bad_messages_keeps_good(server: RunningServer) -> None:
    tenant = server.tenant
    points = _real_points(40)
    first, second, third = points[:10], points[10:20], points[20:30]
    with_nan = _encode(_batch(tenant, 5, points[30:32])).replace(
        str(points[31][1]).encode(), b"NaN", 1
    )
    mixed = _batch(tenant, 6, points[32:34])
    mixed["series"].append(
        {
            "device": "room-1",
            "quantity": "temperature",
            "points": [[points[34][0], "21.5"]],
        }
    )
    oversized = _batch(tenant, 7, [[points[0][0] + i, 1.0] for i in range(60_000)])
    wrong_tenant = _batch("someoneelse", 8, points[35:36])
    missing_field = _batch(tenant, 9, points[36:37])
    del missing_field["site"]
    cases: list[tuple[bytes, str]] = [
        (b"this is not json", "invalid_json"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b"\xff\xfe not utf-8", "invalid_json"),
        (
            _encode(_batch(tenant, 11, [[points[38][0], 10**400]])),
            "invalid_fields",
        ),
        (_encode(_batch(tenant, 3, first, v=2)), "unsupported_version"),
        (_encode(missing_field), "invalid_fields"),
        (with_nan, "non_finite_value"),
        (_encode(mixed), "invalid_fields"),
        (
            _encode(_batch(tenant, 10, [[points[37][0], 1.0]])).replace(
                b'"co2"', b'"co3"'
            ),
            "unknown_quantity",
        ),
        (_encode(oversized), "too_large"),
        (_encode(_batch(tenant, 0, first)), "duplicate_sequence"),
        (_encode(wrong_tenant), "topic_mismatch"),
    ]
    payloads = [_encode(_batch(tenant, 0, first))]
    payloads += [payload for payload, _ in cases[:5]]
    payloads.append(_encode(_batch(tenant, 1, second)))
    payloads += [payload for payload, _ in cases[5:]]
    payloads.append(_encode(_batch(tenant, 2, third)))

    server.publish_raw(topic_for(tenant, GATEWAY, Channel.READINGS), payloads)
    server.wait_stored(accepted=3, rejected=len(cases))

    collector = server.centre.collector
    assert collector is not None
    expected_reasons: dict[str, int] = {}
    for _, reason in cases:
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    assert dict(collector.stats.rejected) == expected_reasons
    assert collector.stats.batches_accepted == 3

    store = server.centre.store
    assert store is not None
    co2 = f"{tenant}.lab.{GATEWAY}.room-1.co2"
    (data,) = store.read([co2], 0, 2**62)
    stored = [
        [t, v]
        for t, v in zip(data.timestamps.tolist(), data.values.tolist(), strict=True)
    ]
    assert stored == first + second + third
    # Nothing of a rejected batch is stored, not even its valid series.
    assert store.series([f"{tenant}.lab.{GATEWAY}.room-1.temperature"]) == []
    assert store.count_points() == 30


def test_collector_counts_invalid_topic(server: RunningServer) -> None:
    server.publish_raw(f"citymesh/v1/{server.tenant}/{GATEWAY}/bogus", [b"{}"])
    collector = server.centre.collector
    assert collector is not None
    server.wait_for(lambda: collector.stats.rejected["invalid_topic"] == 1)
    assert collector.stats.batches_accepted == 0


@pytest.mark.parametrize("repeat", [2, 3])
def test_collector_same_batch_new_seq_stored_once(
    server: RunningServer, repeat: int
) -> None:
    points = _real_points(20)
    payloads = [_encode(_batch(server.tenant, seq, points)) for seq in range(repeat)]
    server.publish_raw(topic_for(server.tenant, GATEWAY, Channel.READINGS), payloads)
    server.wait_stored(accepted=repeat)
    collector = server.centre.collector
    store = server.centre.store
    assert collector is not None and store is not None
    assert store.count_points() == len(points)
    assert collector.stats.points_accepted == repeat * len(points)
    assert collector.stats.points_stored == len(points)
