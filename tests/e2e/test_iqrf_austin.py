"""The austin IQRF mesh through gateway, MQTT and collector, and back by command."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from citymesh.gateway.iqrf.runner import run_iqrf_gateway
from citymesh.gateway.iqrf.service import IqrfGateway
from citymesh.gateway.iqrf.settings import IqrfSettings
from citymesh.gateway.iqrf.sim.scenarios import build_scenario
from citymesh.gateway.iqrf.sim.transport import SimulatedTransport
from citymesh.gateway.settings import GatewaySettings, PublishSettings
from citymesh.registry.models import GatewayRow
from tests.conftest import RunningServer

GATEWAY = "gw-austin"
# Gateway tasks by their stop event, so each test can wait for a clean stop.
RUNNING: dict[asyncio.Event, asyncio.Task[object]] = {}
# Radio delays at a fiftieth of real IQRF timing keep the test short.
TIME_SCALE = 0.02


def _start(
    running: RunningServer, tmp_path: Path
) -> tuple[asyncio.Event, SimulatedTransport, IqrfGateway]:
    scenario = build_scenario("austin", time_scale=TIME_SCALE, lossless=True)
    transport = SimulatedTransport(scenario.mesh)
    settings = GatewaySettings(
        tenant=running.tenant,
        site="austin",
        gateway=GATEWAY,
        data_dir=tmp_path / "gateway",
        mqtt=running.gateway_mqtt(GATEWAY),
        publish=PublishSettings(batch_max_delay_ms=20),
    )
    iqrf = IqrfSettings(collect_interval_s=0.5, request_timeout_s=1.0)

    async def start() -> tuple[asyncio.Event, asyncio.Future[IqrfGateway]]:
        stop = asyncio.Event()
        started: asyncio.Future[IqrfGateway] = asyncio.Future()
        task = asyncio.get_running_loop().create_task(
            run_iqrf_gateway(settings, iqrf, stop, transport, started)
        )
        RUNNING[stop] = task
        return stop, started

    stop, started = running.call(start())

    async def wait() -> IqrfGateway:
        return await asyncio.wait_for(started, 30)

    network = running.call(wait(), timeout=40)
    collector = running.centre.collector
    assert collector is not None
    registry = running.centre.registry
    assert registry is not None

    def announced() -> bool:
        # The birth registers the gateway; the map follows it on the same link.
        topology = collector.topology.latest(running.tenant, GATEWAY)
        return topology is not None and bool(
            registry.list_rows(GatewayRow, tenant=running.tenant, gateway=GATEWAY)
        )

    running.wait_for(announced)
    return stop, transport, network


def _stop(running: RunningServer, stop: asyncio.Event) -> None:
    async def finish() -> None:
        stop.set()
        await asyncio.wait_for(RUNNING.pop(stop), 30)

    running.call(finish(), timeout=40)


def test_austin_stores_every_sensor_and_topology(
    server: RunningServer, tmp_path: Path
) -> None:
    stop, _, network = _start(server, tmp_path)
    assert len(network.devices()) == 20
    store = server.centre.store
    assert store is not None
    prefix = f"{server.tenant}.austin.{GATEWAY}."
    try:
        expected = {
            f"{prefix}node-{address}.{quantity}"
            for address in range(1, 40, 2)
            for quantity in ("temperature", "humidity", "co2")
        }

        def all_stored() -> bool:
            latest = store.latest(sorted(expected))
            return len(latest) == len(expected)

        server.wait_for(all_stored, timeout=30)
        values = {v.series.name: v.value for v in store.latest(sorted(expected))}
        assert len(values) == 60
        assert all(400 <= values[n] <= 2100 for n in expected if n.endswith(".co2"))
        assert all(
            15 <= values[n] <= 30 for n in expected if n.endswith(".temperature")
        )

        url = f"{server.http_url}/api/v1/gateways/{server.tenant}/{GATEWAY}/topology"
        response = httpx.get(url, headers=server.headers)
        assert response.status_code == 200, response.text
        nodes = response.json()["nodes"]
        roles = [n["role"] for n in nodes]
        assert roles.count("coordinator") == 1
        assert roles.count("sensor") == 20
        assert roles.count("router") == 20
        members = [n for n in nodes if n["role"] != "coordinator"]
        assert len(members) == 40
        assert all(n["online"] for n in members)
        assert all(n["hops"] >= 1 for n in members)
        assert max(n["hops"] for n in members) >= 5
        addresses = {n["address"] for n in nodes}
        assert all(n["parent"] in addresses for n in members)
        sensor = next(n for n in members if n["address"] == 1)
        assert sensor["device"] == "node-1"
        assert sensor["quantities"] == ["co2", "humidity", "temperature"]

        listing = httpx.get(
            f"{server.http_url}/api/v1/topology", headers=server.headers
        )
        assert listing.status_code == 200
        assert [(t["gateway"], t["nodes"]) for t in listing.json()] == [(GATEWAY, 41)]
    finally:
        _stop(server, stop)


def test_austin_actuator_command_reaches_node(
    server: RunningServer, tmp_path: Path
) -> None:
    stop, transport, _ = _start(server, tmp_path)
    mesh = transport.mesh
    base = f"{server.http_url}/api/v1/gateways/{server.tenant}/{GATEWAY}/nodes"
    try:
        relay = httpx.post(
            f"{base}/3/commands",
            json={"output": "binary_output", "index": 0, "on": True},
            headers=server.headers,
            timeout=30,
        )
        assert relay.status_code == 200, relay.text
        body = relay.json()
        assert body["ok"] is True, body
        assert body["result"]["previous"] is False
        assert body["result"]["on"] is True
        assert body["result"]["response"].startswith("03.00.4b.80.02.14.00")
        assert mesh.nodes[3].binary_outputs == [True]

        led = httpx.post(
            f"{base}/4/commands",
            json={"output": "ledr", "action": "on"},
            headers=server.headers,
            timeout=30,
        )
        assert led.status_code == 200, led.text
        assert led.json()["ok"] is True
        assert mesh.nodes[4].ledr is True

        unbonded = httpx.post(
            f"{base}/100/commands",
            json={"output": "ledg", "action": "pulse"},
            headers=server.headers,
            timeout=30,
        )
        assert unbonded.status_code == 200
        assert unbonded.json()["ok"] is False
        assert "ERROR_NADR" in unbonded.json()["error"]

        anonymous = httpx.post(
            f"{base}/3/commands", json={"output": "ledr"}, timeout=30
        )
        assert anonymous.status_code == 401
    finally:
        _stop(server, stop)
