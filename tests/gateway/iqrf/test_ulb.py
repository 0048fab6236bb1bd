"""The ulb_library scenario: links and readings follow the ULB recording."""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import pytest

from citymesh.errors import ConfigError
from citymesh.gateway.iqrf.collection import collect
from citymesh.gateway.iqrf.connector import IqrfConnector
from citymesh.gateway.iqrf.sim.mesh import SimulatedMesh, link_threshold
from citymesh.gateway.iqrf.sim.scenarios import build_scenario
from citymesh.gateway.iqrf.sim.transport import SimulatedTransport
from citymesh.gateway.iqrf.sim.ulb import UlbTimeline
from tests.gateway.iqrf.conftest import ULB_LIBRARY

# Recorded seconds in the third and fourth radio power levels (10 min each).
POWER_LEVEL_3_S = 1500.0
POWER_LEVEL_4_S = 2100.0


class Clock:
    """A settable clock for the mesh, in seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _mesh(lossless: bool = True) -> tuple[SimulatedMesh, Clock, IqrfConnector]:
    clock = Clock()
    # speed 1: simulated seconds are recorded seconds, so the clock picks them.
    scenario = build_scenario(
        "ulb_library",
        plan_dir=ULB_LIBRARY,
        time_scale=0.0,
        speed=1.0,
        lossless=lossless,
        clock=clock,
    )
    connector = IqrfConnector(
        SimulatedTransport(scenario.mesh), timeout_s=0.01, retries=0
    )
    return scenario.mesh, clock, connector


def _timeline(mesh: SimulatedMesh) -> UlbTimeline:
    assert isinstance(mesh.timeline, UlbTimeline)
    return mesh.timeline


def _raw_rows(name: str) -> list[list[str]]:
    lines = (ULB_LIBRARY / name).read_text().splitlines()
    return [line.split() for line in lines if line.strip()]


def _shortest_hops(mesh: SimulatedMesh, recorded_s: float) -> dict[str, int]:
    threshold = link_threshold(7)
    graph = nx.Graph()
    graph.add_nodes_from(p.key for p in mesh.plan.places)
    links = _timeline(mesh).links_at(recorded_s)
    graph.add_edges_from(tuple(pair) for pair, q in links.items() if q >= threshold)
    return dict(nx.single_source_shortest_path_length(graph, mesh.coordinator.key))


def test_ulb_scenario_twenty_motes() -> None:
    mesh, _, _ = _mesh()
    assert len(mesh.plan.places) == 20
    assert len(mesh.nodes) == 19
    assert mesh.coordinator.key not in {n.place.key for n in mesh.nodes.values()}
    assert all(len(n.sensors) == 2 for n in mesh.nodes.values())


def test_ulb_link_quality_from_rssi_reports() -> None:
    mesh, _, _ = _mesh()
    rows = _raw_rows("neighbors.txt")
    start_ms = min(int(r[0]) for r in rows)
    in_window = [
        r
        for r in rows
        if 1200_000 <= int(r[0]) - start_ms < 1800_000 and {r[3], r[4]} == {"3", "7"}
    ]
    assert in_window
    # Estimated delivery of a CC2420 at the logged RSSI (register value - 45 dBm).
    delivery = [1 / (1 + math.exp(-(int(r[5]) - 45 + 87) / 2)) for r in in_window]
    minutes = {(int(r[0]) - start_ms) // 60_000 for r in in_window}
    expected = min(1.0, len(minutes) / 10) * sum(delivery) / len(delivery)
    links = _timeline(mesh).links_at(POWER_LEVEL_3_S)
    assert links[frozenset(("mote-3", "mote-7"))] == pytest.approx(expected, abs=1e-4)


async def test_ulb_discovery_matches_recorded_shortest_paths() -> None:
    mesh, clock, connector = _mesh()
    trees = []
    for recorded_s in (POWER_LEVEL_3_S, POWER_LEVEL_4_S):
        clock.now = recorded_s
        await connector.discover(tx_power=7)

        expected = _shortest_hops(mesh, recorded_s)
        links = _timeline(mesh).links_at(recorded_s)
        threshold = link_threshold(7)
        tree = {}
        for address, sim_node in mesh.nodes.items():
            node = connector.nodes[address]
            key = sim_node.place.key
            assert node.hops == expected.get(key), f"node {address} at {recorded_s}"
            if node.hops is None:
                continue
            parent = node.parent
            assert parent is not None
            parent_key = (
                mesh.coordinator.key if parent == 0 else mesh.nodes[parent].place.key
            )
            assert expected[parent_key] == node.hops - 1
            # The parent is the best link among the nodes one hop closer.
            best = max(
                links.get(frozenset((other, key)), 0.0)
                for other, hops in expected.items()
                if hops == node.hops - 1
            )
            assert links[frozenset((parent_key, key))] == best
            assert best >= threshold
            tree[address] = (parent, node.hops)
        trees.append(tree)
    # More radio power in the fourth level: the recorded links change the tree.
    assert trees[0] != trees[1]
    assert len(trees[1]) >= len(trees[0])
    assert max(h for _, h in trees[0].values()) >= 2


async def test_ulb_losses_follow_recorded_quality() -> None:
    mesh, clock, connector = _mesh(lossless=False)
    clock.now = POWER_LEVEL_4_S
    await connector.discover(tx_power=7)
    address = next(a for a, r in mesh.routes.items() if r.hops == 1)
    assert sum(mesh.delivered(address) for _ in range(50)) > 25

    # At minimal radio power, in the first level, the same link is weak or
    # absent, so requests along the unchanged route get lost.
    clock.now = 60.0
    assert mesh.quality(0, address) < 0.2
    assert sum(mesh.delivered(address) for _ in range(50)) < 25


async def test_ulb_sensor_values_follow_readings() -> None:
    mesh, clock, connector = _mesh()
    clock.now = POWER_LEVEL_4_S
    await connector.discover(tx_power=7)
    await connector.inventory()

    values = await collect(connector)

    rows = _raw_rows("readings.txt")
    start_ms = min(int(r[0]) for r in _raw_rows("neighbors.txt"))
    now_ms = start_ms + POWER_LEVEL_4_S * 1000
    checked = 0
    for address, node in mesh.nodes.items():
        mote = node.place.key.removeprefix("mote-")
        logged = [r for r in rows if r[1] == mote and int(r[0]) <= now_ms]
        latest = max(logged, key=lambda r: int(r[0]))
        by_quantity = {v.spec.quantity: v.value for v in values if v.address == address}
        if address not in mesh.routes:
            continue
        temperature = float(latest[6].replace(",", "."))
        humidity = float(latest[5].replace(",", "."))
        assert by_quantity["temperature"] == pytest.approx(temperature, abs=1 / 16)
        assert by_quantity["humidity"] == pytest.approx(humidity, abs=0.5)
        checked += 1
    assert checked >= 18


def test_ulb_scenario_needs_plan_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"neighbors\.txt and readings\.txt"):
        build_scenario("ulb_library")
    with pytest.raises(ConfigError, match="not found"):
        build_scenario("ulb_library", plan_dir=tmp_path)
