"""A gateway replays real recorded data through a real broker into the store and API."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from citymesh.gateway.runner import open_replay_sources, run_gateway
from citymesh.gateway.settings import (
    GatewaySettings,
    PublishSettings,
    ReplaySettings,
)
from citymesh.protocol.names import series_name
from tests.conftest import RunningServer

ROWS = 100  # rows per source, each row one device at one time


def _gateway_settings(running: RunningServer, tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(
        tenant=running.tenant,
        site="lab",
        gateway="gw-e2e",
        data_dir=tmp_path / "gateway",
        mqtt=running.gateway_mqtt("gw-e2e"),
        publish=PublishSettings(batch_max_points=250, batch_max_delay_ms=10),
        replay=ReplaySettings(
            sources=["occupancy", "pedestrian"],
            speed=0,
            timestamps="recorded",
            loop=False,
            limit=ROWS,
        ),
    )


def _expected(tenant: str) -> dict[str, dict[int, float]]:
    expected: dict[str, dict[int, float]] = defaultdict(dict)
    for name in ("occupancy", "pedestrian"):
        for source in open_replay_sources(name, ROWS):
            for r in source.readings():
                key = series_name(tenant, "lab", "gw-e2e", r.device, r.quantity)
                expected[key][r.timestamp_ms] = r.value
    return expected


def _replay(running: RunningServer, settings: GatewaySettings) -> int:
    agent = running.call(
        run_gateway(settings, asyncio.Event(), exit_when_done=True), 120
    )
    running.published.extend(
        f"citymesh/v1/{settings.tenant}/{settings.gateway}/{c}"
        for c in ("birth", "status")
    )
    return int(agent.batches_sent)


def _check_end_to_end(running: RunningServer, tmp_path: Path) -> None:
    settings = _gateway_settings(running, tmp_path)
    batches = _replay(running, settings)
    running.wait_stored(accepted=batches)

    expected = _expected(running.tenant)
    total = sum(len(points) for points in expected.values())
    assert total > 1000
    store = running.centre.store
    assert store is not None
    assert store.count_points() == total
    for name, points in expected.items():
        (data,) = store.read([name], 0, 2**62)
        stored = dict(zip(data.timestamps.tolist(), data.values.tolist(), strict=True))
        assert stored == points, name

    # The REST API returns the raw points exactly.
    co2 = series_name(running.tenant, "lab", "gw-e2e", "room-1", "co2")
    first, last = min(expected[co2]), max(expected[co2])
    response = httpx.get(
        f"{running.http_url}/api/v1/series/{co2}/points",
        params={"from": str(first), "until": str(last + 1)},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["unit"] == "ppm"
    assert [tuple(p) for p in body["points"]] == sorted(expected[co2].items())

    sensors = httpx.get(
        f"{running.http_url}/api/v1/sensors", params={"tenant": running.tenant}
    ).json()
    by_series = {s["series"]: s for s in sensors}
    # The birth message registers every sensor, also those without readings yet.
    assert set(expected) <= set(by_series)
    for name, sensor in by_series.items():
        if name not in expected:
            assert sensor["latest"] is None, name
    assert by_series[co2]["latest"] == {"timestamp": last, "value": expected[co2][last]}

    # /render buckets at the 60 s step; the last reading in a minute wins. As
    # in whisper, the grid starts after the minute holding `from`.
    buckets: dict[int, float] = {}
    for ts, value in sorted(expected[co2].items()):
        buckets[ts // 60_000 * 60] = value
    response = httpx.get(
        f"{running.http_url}/render",
        params={
            "target": f"{running.tenant}.lab.gw-e2e.room-1.co2",
            "from": str(first // 1000 - 60),
            "until": str(last // 1000 + 60),
            "format": "json",
        },
    )
    assert response.status_code == 200
    (rendered,) = response.json()
    assert rendered["target"] == co2
    values = {ts: v for v, ts in rendered["datapoints"] if v is not None}
    assert values == buckets

    # Replaying the same recordings again adds no point.
    written_before = store.count_points()
    batches_again = _replay(running, settings)
    running.wait_stored(accepted=batches + batches_again)
    assert store.count_points() == written_before
    collector = running.centre.collector
    assert collector is not None
    assert collector.stats.points_stored == total
    assert collector.stats.points_accepted == 2 * total


def test_replay_end_to_end_embedded_broker(
    server: RunningServer, tmp_path: Path
) -> None:
    _check_end_to_end(server, tmp_path)


@pytest.mark.mosquitto
def test_replay_end_to_end_mosquitto(
    mosquitto_server: RunningServer, tmp_path: Path
) -> None:
    _check_end_to_end(mosquitto_server, tmp_path)
