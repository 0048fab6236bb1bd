"""The connector against the simulated mesh: discovery, collection, faults."""

from __future__ import annotations

from collections import deque

import pytest

from citymesh.gateway.iqrf.collection import collect
from citymesh.gateway.iqrf.connector import IqrfConnector
from citymesh.gateway.iqrf.network import ROLE_ROUTER, ROLE_SENSOR
from citymesh.gateway.iqrf.sim.layout import load_intel_lab
from citymesh.gateway.iqrf.sim.mesh import (
    SimNode,
    SimulatedMesh,
    link_threshold,
)
from citymesh.gateway.iqrf.sim.scenarios import build_scenario
from citymesh.gateway.iqrf.sim.transport import SimulatedTransport
from tests.gateway.iqrf.conftest import INTEL_LAB


def _connector(scenario: str, **options: object) -> tuple[IqrfConnector, SimulatedMesh]:
    built = build_scenario(scenario, time_scale=0.0, lossless=True, **options)  # type: ignore[arg-type]
    transport = SimulatedTransport(built.mesh)
    return IqrfConnector(transport, timeout_s=0.01, retries=0), built.mesh


def _frames(connector: IqrfConnector) -> list[tuple[int, int]]:
    transport = connector.transport
    assert isinstance(transport, SimulatedTransport)
    return [(request[2], request[3]) for request, _ in transport.frames]


def _bfs_hops(mesh: SimulatedMesh, threshold: float) -> dict[int, int]:
    hops = {0: 0}
    queue = deque([0])
    while queue:
        current = queue.popleft()
        for other in mesh.nodes:
            if other not in hops and mesh.quality(current, other) >= threshold:
                hops[other] = hops[current] + 1
                queue.append(other)
    return hops


async def test_discovery_intel_lab_matches_shortest_paths() -> None:
    plan = load_intel_lab(INTEL_LAB)
    coordinator = plan.place("mote-1")
    nodes = [
        SimNode(i, 0x8100_0000 + i, 0, place, "router")
        for i, place in enumerate(plan.places[1:], start=1)
    ]
    mesh = SimulatedMesh(plan, coordinator, nodes, time_scale=0.0, lossless=True)
    connector = IqrfConnector(SimulatedTransport(mesh), timeout_s=0.01, retries=0)

    await connector.discover(tx_power=7)

    expected = _bfs_hops(mesh, link_threshold(7))
    assert len(expected) > 40
    assert max(expected.values()) >= 3
    for address, node in connector.nodes.items():
        assert node.hops == expected.get(address), f"node {address}"
        if address and node.parent is not None:
            parent_hops = connector.nodes[node.parent].hops
            assert parent_hops == node.hops - 1
            assert mesh.quality(node.parent, address) >= link_threshold(7)
    # Mote 5 received nothing in the lab, so discovery cannot reach it.
    assert connector.nodes[4].hops is None


async def test_discovery_lower_power_reaches_fewer_hops_apart() -> None:
    connector, mesh = _connector("austin")
    full = await connector.discover(tx_power=7)
    low = await connector.discover(tx_power=1)
    assert full == 40
    assert low <= full
    expected = _bfs_hops(mesh, link_threshold(1))
    for address, node in connector.nodes.items():
        assert node.hops == expected.get(address), f"node {address}"


async def test_collect_austin_every_sensor() -> None:
    connector, mesh = _connector("austin")
    await connector.discover()
    await connector.inventory()
    roles = [n.role for a, n in connector.nodes.items() if a]
    assert roles.count(ROLE_SENSOR) == 20
    assert roles.count(ROLE_ROUTER) == 20

    values = await collect(connector)

    assert len(values) == 60
    assert not [v for v in values if v.missing]
    now = mesh.now_s()
    node = mesh.nodes[1]
    by_quantity = {v.spec.quantity: v.value for v in values if v.address == 1}
    temperature = node.sensors[0].read(now)
    assert by_quantity["temperature"] == pytest.approx(temperature, abs=1 / 16)
    assert by_quantity["humidity"] == pytest.approx(node.sensors[1].read(now), abs=0.5)
    assert by_quantity["co2"] == pytest.approx(node.sensors[2].read(now), abs=1)
    frames = _frames(connector)
    # Sensor addresses run to 39: 2-byte forms need SendSelective, the 1-byte
    # humidity fits one FRC Send.
    assert (0x0D, 0x02) in frames
    assert (0x0D, 0x00) in frames


async def test_collect_city_block_deep_mesh() -> None:
    connector, _ = _connector("city_block")
    await connector.discover()
    await connector.inventory()
    depth = max(n.hops or 0 for n in connector.nodes.values())
    assert depth >= 8
    assert len(connector.nodes) == 197

    values = await collect(connector)

    assert len(values) == 300
    assert not [v for v in values if v.missing]
    frames = _frames(connector)
    assert (0x0D, 0x02) in frames
    # 1-byte humidity of nodes past 54 needs the Extra Result.
    assert (0x0D, 0x01) in frames


async def test_collect_faulty_sensor_is_missing() -> None:
    connector, mesh = _connector("austin")
    await connector.discover()
    await connector.inventory()
    mesh.nodes[3].sensors[0].faulty = True

    values = await collect(connector)

    node3 = {v.spec.quantity: v for v in values if v.address == 3}
    assert node3["temperature"].value is None
    assert node3["temperature"].reason == "sensor_error"
    assert node3["co2"].value is not None
    assert connector.missing["sensor_error"] == 1


async def test_collect_offline_node_times_out() -> None:
    connector, mesh = _connector("austin")
    await connector.discover()
    await connector.inventory()
    mesh.nodes[39].online = False

    for _ in range(2):
        values = await collect(connector)

    gone = [v for v in values if v.address == 39]
    assert len(gone) == 3
    assert {v.reason for v in gone} == {"timeout"}
    assert connector.nodes[39].online is False
    assert connector.nodes[37].online is True

    mesh.nodes[39].online = True
    values = await collect(connector)
    assert not [v for v in values if v.missing]
    assert connector.nodes[39].online is True


async def test_collect_falls_back_to_direct_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connector, _ = _connector("austin")
    await connector.discover()
    await connector.inventory()
    transport = connector.transport
    assert isinstance(transport, SimulatedTransport)
    original = transport.responder._frc_value

    def no_frc_for_node_5(address: int, command: int, user_data: bytes) -> int:
        return 0 if address == 5 else original(address, command, user_data)

    monkeypatch.setattr(transport.responder, "_frc_value", no_frc_for_node_5)

    values = await collect(connector)

    assert not [v for v in values if v.missing]
    # ReadSensorsWithTypes is Sensor (0x5E) command 0x01.
    direct = [r for r, _ in transport.frames if r[0] == 5 and r[2:4] == b"\x5e\x01"]
    assert len(direct) == 1
