"""Faults injected into real processes: every accepted reading is stored once."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from citymesh.gateway.runner import open_replay_sources
from citymesh.protocol.names import series_name
from tests.faults.harness import (
    GatewayProcess,
    Mosquitto,
    ServerProcess,
    TcpProxy,
    expected_readings,
    running,
    total,
    wait_until,
)

pytestmark = pytest.mark.mosquitto

# 100 recorded hours of the 33 Melbourne pedestrian counters.
ROWS = 3300
GATEWAY = "gw-1"


def _wait_accepted(server: ServerProcess, points: int, timeout: float = 30) -> None:
    wait_until(
        lambda: server.stats()["points_accepted"] >= points,
        timeout,
        f"{points} points accepted",
    )


def _wait_quiet(server: ServerProcess, quiet_s: float = 2.0) -> None:
    seen = -1
    while (received := server.stats()["messages_received"]) != seen:
        seen = received
        time.sleep(quiet_s)


def _gateway_status(server: ServerProcess, gateway: str) -> dict[str, Any]:
    for row in server.gateways_api():
        if row["gateway"] == gateway:
            return dict(row["status"])
    raise AssertionError(f"gateway {gateway} not in /api/v1/gateways")


def _check_exactly_once(
    server: ServerProcess, expected: dict[str, dict[int, float]]
) -> dict[str, Any]:
    """Check the counters, stop the server and compare its store with `expected`."""
    wait_until(
        lambda: server.stats()["points_stored"] >= total(expected),
        30,
        "every point stored",
    )
    stats = server.stats()
    status = _gateway_status(server, GATEWAY)
    assert stats["points_stored"] == total(expected)
    assert stats["sequence_gaps"] == 0
    assert set(stats["rejected"]) <= {"duplicate_sequence"}
    assert status["readings_dropped"] == 0
    assert status["backlog"] == 0
    server.stop()
    assert server.stored() == expected
    return status


def test_broker_stopped_30s_loses_nothing(tmp_path: Path, tenant: str) -> None:
    broker = Mosquitto(tmp_path / "broker")
    server = ServerProcess(tmp_path / "server", broker.url, tenant, [GATEWAY])
    # 100 recorded hours in about 40 s, so the outage falls mid-stream.
    gateway = GatewayProcess(
        tmp_path / "gw", broker.url, tenant, GATEWAY, ROWS, speed=9000
    )
    expected = expected_readings(tenant, GATEWAY, ROWS)
    with running(broker, server, gateway):
        broker.start()
        server.start()
        gateway.start()
        _wait_accepted(server, 200)
        broker.stop()
        time.sleep(30)
        broker.start()
        gateway.wait(60)
        status = _check_exactly_once(server, expected)
    assert status["readings_sent"] == total(expected)
    assert status["reconnects"] >= 1


def test_link_black_hole_then_reset_loses_nothing(tmp_path: Path, tenant: str) -> None:
    broker = Mosquitto(tmp_path / "broker")
    server = ServerProcess(tmp_path / "server", broker.url, tenant, [GATEWAY])
    with running(broker, server):
        broker.start()
        proxy = TcpProxy(broker.port)
        gateway = GatewayProcess(
            tmp_path / "gw",
            f"mqtt://127.0.0.1:{proxy.port}",
            tenant,
            GATEWAY,
            ROWS,
            speed=20000,
        )
        expected = expected_readings(tenant, GATEWAY, ROWS)
        with running(gateway):
            server.start()
            gateway.start()
            _wait_accepted(server, 200)
            # Silence first: the gateway notices only by its PUBACK timeout.
            proxy.set_mode("blackhole")
            time.sleep(6)
            proxy.set_mode("reset")
            time.sleep(2)
            proxy.set_mode("pass")
            gateway.wait(60)
            proxy.close()
            status = _check_exactly_once(server, expected)
    assert status["reconnects"] >= 1


def _replay_order(rows: int) -> list[tuple[str, int]]:
    (source,) = open_replay_sources("pedestrian", rows)
    return [(r.device, r.timestamp_ms) for r in source.readings()]


def test_gateway_sigkill_keeps_buffered_readings(tmp_path: Path, tenant: str) -> None:
    broker = Mosquitto(tmp_path / "broker")
    server = ServerProcess(tmp_path / "server", broker.url, tenant, [GATEWAY])
    first = GatewayProcess(
        tmp_path / "gw", broker.url, tenant, GATEWAY, ROWS, speed=20000
    )
    with running(broker, server, first):
        broker.start()
        server.start()
        # The broker stops so that readings pile up in the gateway's buffer.
        first.start()
        _wait_accepted(server, 300)
        broker.stop()
        time.sleep(2)
        first.kill()
        buffer = first.directory / "state" / f"{GATEWAY}.buffer.sqlite"
        with sqlite3.connect(buffer) as db:
            buffered = set(db.execute("SELECT device, timestamp_ms FROM readings"))
        assert buffered, "the kill came after everything was acknowledged"
        broker.start()
        # The restarted gateway replays only the first recorded hour again,
        # so the rest of what arrives must come from the buffer.
        second = GatewayProcess(
            tmp_path / "gw", broker.url, tenant, GATEWAY, 1, speed=0
        )
        with running(second):
            second.start()
            second.wait(60)
        wait_until(lambda: server.stats()["points_stored"] > 0, 10, "points")
        time.sleep(1)
        stats = server.stats()
        server.stop()
        stored = server.stored()
    stored_keys = {
        (name.split(".")[3], ts) for name, points in stored.items() for ts in points
    }
    order = _replay_order(ROWS)
    assert buffered <= stored_keys
    # Readings are committed in replay order, so what is stored is a prefix of
    # the replay without holes.
    assert stored_keys == set(order[: len(stored_keys)])
    assert stats["points_stored"] == len(stored_keys)
    assert stats["sequence_gaps"] == 0


def test_collector_sigkill_shared_subscription(tmp_path: Path, tenant: str) -> None:
    broker = Mosquitto(tmp_path / "broker")
    servers = [
        ServerProcess(
            tmp_path / f"server-{n}",
            broker.url,
            tenant,
            [GATEWAY],
            client_id=f"collector-{n}",
            share_group="collectors",
        )
        for n in (1, 2)
    ]
    gateway = GatewayProcess(
        tmp_path / "gw",
        broker.url,
        tenant,
        GATEWAY,
        ROWS,
        speed=20000,
        publish={"batch_max_points": 50},
    )
    expected = expected_readings(tenant, GATEWAY, ROWS)
    with running(broker, *servers, gateway):
        broker.start()
        for server in servers:
            server.start()
        gateway.start()
        _wait_accepted(servers[0], 200)
        servers[0].kill()
        time.sleep(1)
        servers[0].start()
        gateway.wait(60)
        # The restarted collector's counters begin at zero, so the stores tell
        # whether everything is in; they are read once no message came for 2 s.
        for server in servers:
            _wait_quiet(server)
        counted = [s.stats() for s in servers]
        for server in servers:
            server.stop()
        stores = [server.stored() for server in servers]
    assert counted[1]["points_stored"] > 0
    assert all(stats["sequence_gaps"] == 0 for stats in counted)
    merged: dict[str, dict[int, float]] = {}
    for store in stores:
        for name, points in store.items():
            overlap = set(merged.get(name, {})) & set(points)
            assert not overlap, f"{name}: stored by both collectors"
            merged.setdefault(name, {}).update(points)
    assert merged == expected


def test_buffer_byte_limit_drops_counted_oldest(tmp_path: Path, tenant: str) -> None:
    rows = 6600
    broker = Mosquitto(tmp_path / "broker")
    server = ServerProcess(tmp_path / "server", broker.url, tenant, [GATEWAY])
    with running(broker, server):
        broker.start()
        server.start()
        proxy = TcpProxy(broker.port)
        gateway = GatewayProcess(
            tmp_path / "gw",
            f"mqtt://127.0.0.1:{proxy.port}",
            tenant,
            GATEWAY,
            rows,
            speed=0,
            buffer={"max_bytes": 128 * 1024},
        )
        expected = expected_readings(tenant, GATEWAY, rows)
        with running(gateway):
            # The whole recording is buffered while the link refuses connections.
            proxy.set_mode("reset")
            gateway.start()
            wait_until(
                lambda: "reading source finished" in gateway.log.read_text(),
                30,
                "the replay to finish",
            )
            proxy.set_mode("pass")
            gateway.wait(60)
        proxy.close()
        _wait_quiet(server, 1.0)
        status = _gateway_status(server, GATEWAY)
        stats = server.stats()
        server.stop()
        stored = server.stored()
    dropped = status["readings_dropped"]
    assert dropped > 0
    assert total(stored) == total(expected) - dropped
    assert stats["points_stored"] == total(stored)
    assert stats["sequence_gaps"] == 0
    order = _replay_order(rows)
    kept = {(device, ts) for device, ts in order[dropped:]}
    stored_keys = {
        (name.split(".")[3], ts) for name, points in stored.items() for ts in points
    }
    assert stored_keys == kept
    assert f"dropped {dropped} readings" in gateway.log.read_text()


def test_collector_paused_20s_loses_nothing(tmp_path: Path, tenant: str) -> None:
    names = ["gw-1", "gw-2", "gw-3"]
    broker = Mosquitto(tmp_path / "broker")
    server = ServerProcess(tmp_path / "server", broker.url, tenant, names)
    # Batches of 5 readings: more than Mosquitto's default 1000 queued
    # messages pile up during the pause.
    gateways = [
        GatewayProcess(
            tmp_path / name,
            broker.url,
            tenant,
            name,
            ROWS,
            speed=12000,
            publish={"batch_max_points": 5, "batch_max_delay_ms": 10},
        )
        for name in names
    ]
    expected: dict[str, dict[int, float]] = {}
    for name in names:
        expected.update(expected_readings(tenant, name, ROWS))
    with running(broker, server, *gateways):
        broker.start()
        server.start()
        for gateway in gateways:
            gateway.start()
        _wait_accepted(server, 300)
        before = server.stats()["messages_received"]
        server.signal(signal.SIGSTOP)
        time.sleep(20)
        server.signal(signal.SIGCONT)
        for gateway in gateways:
            gateway.wait(60)
        wait_until(
            lambda: server.stats()["points_stored"] >= total(expected),
            60,
            "every point stored",
        )
        stats = server.stats()
        server.stop()
        stored = server.stored()
    assert stats["messages_received"] - before > 1000
    assert stats["points_stored"] == total(expected)
    assert stats["sequence_gaps"] == 0
    assert stored == expected


def test_clock_skew_flagged_timestamps_kept(tmp_path: Path, tenant: str) -> None:
    from tests.faults.skewed import run_skewed_gateway

    broker = Mosquitto(tmp_path / "broker")
    gateways = {"gw-ahead": 600_000, "gw-behind": -600_000, "gw-true": 0}
    server = ServerProcess(tmp_path / "server", broker.url, tenant, list(gateways))
    with running(broker, server):
        broker.start()
        server.start()
        sent = {
            name: run_skewed_gateway(
                tmp_path / name, broker.url, tenant, name, offset_ms
            )
            for name, offset_ms in gateways.items()
        }
        statuses = {name: _gateway_status(server, name) for name in gateways}
        server.stop()
        stored = server.stored()
    for name, offset_ms in gateways.items():
        status = statuses[name]
        assert status["clock_skewed"] is (offset_ms != 0), (name, status)
        assert abs(status["clock_skew_ms"] - offset_ms) < 5_000, name
        for series, points in sent[name].items():
            assert stored[series_name(tenant, "lab", name, *series)] == points
