"""Ready-made simulated meshes with sensor values from real recordings.

austin      one gateway, 20 rooms, each with a sensor node (temperature,
            humidity, CO2, a ventilation relay) and a router at its door.
            The floor plan is the Intel Berkeley lab (54 motes, measured
            delivery rates) when its files are given, and otherwise a
            generated office of 20 rooms along a corridor.
city_block  a street grid with lamp-post routers and sensor nodes on the
            buildings: 196 nodes, the farthest more than 8 hops away.
ulb_library the ULB library's 20 motes (files from a folder the user gives):
            the best-connected mote is the coordinator, the other 19 are
            sensor nodes whose links and readings follow the recording.

Sensor values of austin and city_block replay the UCI occupancy recordings
shipped in citymesh.data (CC BY 4.0, Candanedo and Feldheim): each node plays
one of the three recordings from its own starting row, so rooms differ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iqrfpy.utils.sensor_constants import SensorTypes

from citymesh.errors import ConfigError
from citymesh.gateway.iqrf.sim.layout import (
    FloorPlan,
    Place,
    generated_city_block,
    generated_office,
    load_intel_lab,
)
from citymesh.gateway.iqrf.sim.mesh import (
    LINK_THRESHOLD,
    SimNode,
    SimSensor,
    SimulatedMesh,
)
from citymesh.gateway.iqrf.sim.ulb import UlbDeployment, load_ulb_library
from citymesh.gateway.sources import default_data_dir
from citymesh.gateway.sources.occupancy import ROOMS, read_occupancy_file

logger = logging.getLogger(__name__)

SCENARIOS = ("austin", "city_block", "ulb_library")
# HWPID of the sensor nodes: the DDC-SE-01 sensor board product the IQRF
# daemon's recorded examples read (5122); routers run plain DPA (HWPID 0).
HWPID_SENSOR_NODE = 0x1402
HWPID_ROUTER = 0x0000
# Motes of the Intel lab left out of austin: mote 5 received nothing.
INTEL_DEAD_MOTES = frozenset({"mote-5"})
SENSOR_TYPES = (
    (SensorTypes.TEMPERATURE, "temperature"),
    (SensorTypes.RELATIVE_HUMIDITY, "humidity"),
    (SensorTypes.CO2, "co2"),
)


@dataclass(frozen=True)
class Scenario:
    """A simulated mesh ready to be driven through a transport."""

    name: str
    mesh: SimulatedMesh
    plan_source: str


class Recordings:
    """Per-node sensor values from the UCI occupancy recordings."""

    def __init__(self, data_dir: Path | None = None, speed: float = 60.0) -> None:
        folder = (data_dir or default_data_dir()) / "occupancy_uci"
        self.speed = speed
        """Recorded seconds per simulated second."""
        self._tracks: list[list[dict[str, float]]] = []
        for device, file, _ in ROOMS:
            rows = read_occupancy_file(folder / file, device)
            self._tracks.append([dict(row.values) for row in rows])

    def reader(self, node: int, quantity: str) -> Callable[[float], float]:
        """Return the value of `quantity` at node `node` over simulated time."""
        track = self._tracks[node % len(self._tracks)]
        start = (node * 389) % len(track)

        def read(seconds: float) -> float:
            row = track[(start + int(seconds * self.speed / 60)) % len(track)]
            return row[quantity]

        return read


def build_scenario(
    name: str,
    *,
    plan_dir: Path | None = None,
    time_scale: float = 1.0,
    speed: float = 60.0,
    seed: int = 1,
    lossless: bool = False,
    clock: Callable[[], float] = time.monotonic,
    start_offset_s: float = 0.0,
) -> Scenario:
    """Build a named scenario.

    Args:
        name: austin, city_block or ulb_library.
        plan_dir: folder of the Intel lab files for austin's floor plan, or of
            the ULB library files (required for ulb_library).
        time_scale: multiplies every simulated radio delay (0 for none).
        speed: recorded seconds of sensor (and ULB link) data per simulated second.
        seed: seed of link losses and drop-outs.
        lossless: deliver every request whose route exists.
        clock: the mesh's clock in seconds.
        start_offset_s: recorded seconds into the ULB run at which ulb_library
            starts.
    """
    timeline = None
    if name == "austin":
        recordings = Recordings(speed=speed)
        if plan_dir is not None:
            plan = load_intel_lab(plan_dir)
            coordinator, nodes = _austin_on_intel_lab(plan, recordings)
        else:
            plan = generated_office()
            coordinator, nodes = _austin_on_office(plan, recordings)
    elif name == "city_block":
        plan = generated_city_block()
        coordinator, nodes = _city_block(plan, Recordings(speed=speed))
    elif name == "ulb_library":
        if plan_dir is None:
            raise ConfigError(
                "scenario 'ulb_library' needs the folder of the ULB library's "
                "neighbors.txt and readings.txt"
            )
        deployment = load_ulb_library(plan_dir, speed, start_offset_s)
        plan, timeline = deployment.plan, deployment.timeline
        coordinator, nodes = _ulb_library(deployment)
    else:
        raise ConfigError(
            f"unknown scenario {name!r}; known scenarios: {', '.join(SCENARIOS)}"
        )
    mesh = SimulatedMesh(
        plan,
        coordinator,
        nodes,
        time_scale=time_scale,
        seed=seed,
        lossless=lossless,
        clock=clock,
        timeline=timeline,
    )
    logger.info(
        "scenario %s: %d nodes on the %s plan (%s)",
        name,
        len(nodes),
        plan.name,
        plan.source,
    )
    return Scenario(name, mesh, plan.source)


def _sensor_node(address: int, place: Place, recordings: Recordings) -> SimNode:
    sensors = [
        SimSensor(int(sensor_type), recordings.reader(address, quantity))
        for sensor_type, quantity in SENSOR_TYPES
    ]
    return SimNode(
        address=address,
        mid=0x8120_0000 + address,
        hwpid=HWPID_SENSOR_NODE,
        place=place,
        role="sensor",
        sensors=sensors,
        binary_outputs=[False],
    )


def _router(address: int, place: Place) -> SimNode:
    return SimNode(
        address=address,
        mid=0x8110_0000 + address,
        hwpid=HWPID_ROUTER,
        place=place,
        role="router",
    )


def _austin_on_office(
    plan: FloorPlan, recordings: Recordings
) -> tuple[Place, list[SimNode]]:
    # Room k gets the sensor node at 2k - 1 and the router at 2k, so the
    # sensor addresses run past 31 and 2-byte FRC needs selective requests.
    nodes: list[SimNode] = []
    for k in range(20):
        room = f"room-{k + 1}"
        nodes.append(_sensor_node(2 * k + 1, plan.place(f"{room}-sensor"), recordings))
        nodes.append(_router(2 * k + 2, plan.place(f"{room}-door")))
    return plan.place("gateway"), nodes


def _austin_on_intel_lab(
    plan: FloorPlan, recordings: Recordings
) -> tuple[Place, list[SimNode]]:
    motes = [p for p in plan.places if p.key not in INTEL_DEAD_MOTES]
    # The gateway takes the mote with the most good links, like an installer
    # who puts it where most nodes hear it.
    coordinator = max(
        motes,
        key=lambda p: sum(plan.quality(p.key, o.key) >= LINK_THRESHOLD for o in motes),
    )
    # The 40 motes closest to it in hops become nodes, so the mesh is connected.
    order = [coordinator]
    for current in order:
        for other in motes:
            good = plan.quality(current.key, other.key) >= LINK_THRESHOLD
            if good and other not in order:
                order.append(other)
    order += [p for p in motes if p not in order]
    others = order[1:41]
    nodes = [
        _sensor_node(i, place, recordings) if i % 2 else _router(i, place)
        for i, place in enumerate(others, start=1)
    ]
    return coordinator, nodes


def _city_block(plan: FloorPlan, recordings: Recordings) -> tuple[Place, list[SimNode]]:
    nodes: list[SimNode] = []
    for address, place in enumerate(plan.places[1:], start=1):
        if place.key.startswith("post-"):
            nodes.append(_router(address, place))
        else:
            nodes.append(_sensor_node(address, place, recordings))
    return plan.place("gateway"), nodes


def _ulb_library(deployment: UlbDeployment) -> tuple[Place, list[SimNode]]:
    # Motes keep their order; addresses 1 to 19 go to all but the coordinator.
    coordinator = deployment.best_connected()
    others = [p for p in deployment.plan.places if p.key != coordinator.key]
    nodes = []
    for address, place in enumerate(others, start=1):
        mote = int(place.key.removeprefix("mote-"))
        if mote not in deployment.readings.times:
            nodes.append(_router(address, place))
            continue
        sensors = [
            SimSensor(
                int(sensor_type),
                deployment.readings.reader(mote, quantity, deployment.timeline),
            )
            for sensor_type, quantity in SENSOR_TYPES
            if quantity in ("temperature", "humidity")
        ]
        nodes.append(
            SimNode(
                address=address,
                mid=0x8130_0000 + mote,
                hwpid=HWPID_SENSOR_NODE,
                place=place,
                role="sensor",
                sensors=sensors,
            )
        )
    return coordinator, nodes
