"""State of a simulated IQRF network: nodes, bonds, routes, delivery, latency."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from citymesh.gateway.iqrf.sim.layout import FloorPlan, Place

logger = logging.getLogger(__name__)

# A link is used for routing when its delivery probability at full TX power
# (7) reaches this; each power step below 7 raises the bar by 0.05.
LINK_THRESHOLD = 0.5
TX_POWER_STEP = 0.05
# IQRF repeats a packet on a hop; a hop fails only when all tries are lost.
HOP_TRIES = 4
# Time per hop in one direction, and the fixed cost of a request at the
# coordinator, in seconds before time_scale. An IQRF STD timeslot is 40 ms.
HOP_S = 0.04
BASE_S = 0.02
MAX_HOPS = 0xEF


@dataclass
class SimSensor:
    """A sensor of a simulated node: its Standard Sensor type and its values."""

    sensor_type: int
    read: Callable[[float], float]
    """Value at a time in seconds since the mesh started."""
    faulty: bool = False
    """A faulty sensor answers with its quantity's error code."""


@dataclass
class SimNode:
    """A simulated node: identity, place, sensors and output state."""

    address: int
    mid: int
    hwpid: int
    place: Place
    role: str
    sensors: list[SimSensor] = field(default_factory=list)
    bonded: bool = True
    online: bool = True
    ledr: bool = False
    ledg: bool = False
    io_ports: dict[int, int] = field(default_factory=dict)
    binary_outputs: list[bool] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Route:
    """Where discovery put a node in the routing tree."""

    hops: int
    parent: int
    vrn: int
    quality: float
    """Delivery probability of the link to the parent."""


class LinkTimeline(Protocol):
    """Link qualities that change over time, in place of the plan's fixed ones."""

    def quality_at(self, a: str, b: str, seconds: float) -> float:
        """Return the delivery probability between places at a simulated time."""
        ...


def link_threshold(tx_power: int) -> float:
    """Return the minimum link quality usable at a TX power of 0 to 7."""
    return LINK_THRESHOLD + TX_POWER_STEP * (7 - max(0, min(7, tx_power)))


class SimulatedMesh:
    """A coordinator and its nodes on a floor plan, thread-safe.

    Discovery builds a breadth-first routing tree over the links at or above
    the threshold; a node's parent is its best link one hop closer to the
    coordinator. Requests to a node succeed with the product of the per-hop
    success along its route, down and back, and take longer with every hop.
    With a `timeline`, every link quality (for discovery, losses and RSSI)
    is the one at the current simulated time.
    """

    def __init__(
        self,
        plan: FloorPlan,
        coordinator: Place,
        nodes: list[SimNode],
        *,
        time_scale: float = 1.0,
        seed: int = 0,
        lossless: bool = False,
        clock: Callable[[], float] = time.monotonic,
        timeline: LinkTimeline | None = None,
    ) -> None:
        self.plan = plan
        self.timeline = timeline
        self.coordinator = coordinator
        self.nodes: dict[int, SimNode] = {n.address: n for n in nodes}
        self.time_scale = time_scale
        self.lossless = lossless
        self.routes: dict[int, Route] = {}
        self.request_hops = 0xFF
        self.response_hops = 0xFF
        self.coordinator_mid = 0x8100_0000 + seed
        self.drop_probability = 0.0
        self.return_probability = 0.0
        self._rng = random.Random(seed)
        self._clock = clock
        self._started = clock()
        self.lock = threading.RLock()

    def now_s(self) -> float:
        """Return seconds since the mesh started."""
        return self._clock() - self._started

    def bonded(self) -> list[int]:
        """Return the bonded node addresses, sorted."""
        return sorted(a for a, n in self.nodes.items() if n.bonded)

    def _key(self, address: int) -> str:
        return self.coordinator.key if address == 0 else self.nodes[address].place.key

    def quality(self, a: int, b: int) -> float:
        """Return the link quality between two addresses (0 is the coordinator)."""
        if self.timeline is not None:
            if a == b:
                return 0.0
            return self.timeline.quality_at(self._key(a), self._key(b), self.now_s())
        return self.plan.quality(self._key(a), self._key(b))

    def discover(self, tx_power: int, max_address: int) -> int:
        """Build the routing tree over bonded nodes and return how many it reached."""
        threshold = link_threshold(tx_power)
        candidates = [
            a
            for a in self.bonded()
            if self.nodes[a].online and (max_address == 0 or a <= max_address)
        ]
        routes: dict[int, Route] = {}
        hops = {0: 0}
        frontier = deque([0])
        while frontier:
            current = frontier.popleft()
            for other in candidates:
                if other in hops:
                    continue
                if self.quality(current, other) >= threshold:
                    hops[other] = hops[current] + 1
                    frontier.append(other)
        vrn = 0
        for address in sorted(hops, key=lambda a: (hops[a], a)):
            if address == 0:
                continue
            vrn += 1
            parents = [p for p in hops if hops[p] == hops[address] - 1]
            parent = max(parents, key=lambda p: (self.quality(p, address), -p))
            routes[address] = Route(
                hops[address], parent, vrn, self.quality(parent, address)
            )
        self.routes = routes
        logger.debug("simulated discovery reached %d nodes", len(routes))
        return len(routes)

    def path(self, address: int) -> list[int]:
        """Return the route from the coordinator to `address`, both included."""
        chain = [address]
        while chain[-1] != 0:
            chain.append(self.routes[chain[-1]].parent)
        return chain[::-1]

    def reachable(self, address: int) -> bool:
        """Tell whether a request can reach the node: bonded, routed, path online."""
        node = self.nodes.get(address)
        if node is None or not node.bonded or address not in self.routes:
            return False
        return all(a == 0 or self.nodes[a].online for a in self.path(address))

    def delivered(self, address: int) -> bool:
        """Draw whether one request to the node and its response both arrive."""
        if not self.reachable(address):
            return False
        if self.lossless:
            return True
        chance = 1.0
        for address_on_path in self.path(address)[1:]:
            q = self._route_quality(address_on_path)
            chance *= (1.0 - (1.0 - q) ** HOP_TRIES) ** 2
        return self._rng.random() < chance

    def latency_s(self, address: int) -> float:
        """Return the time a request to the node and its response take."""
        hops = self.routes[address].hops if address in self.routes else 0
        return (BASE_S + 2 * HOP_S * hops) * self.time_scale

    def frc_latency_s(self) -> float:
        """Return the time an FRC round takes: each node gets a slot, twice."""
        depth = max((r.hops for r in self.routes.values()), default=0)
        slots = len(self.routes) + depth
        return (BASE_S + 2 * HOP_S * slots) * self.time_scale

    def churn(self) -> None:
        """Let nodes drop out and come back with the configured probabilities."""
        if not self.drop_probability and not self.return_probability:
            return
        for node in self.nodes.values():
            if node.online and self._rng.random() < self.drop_probability:
                node.online = False
                logger.info("simulated node %d dropped out", node.address)
            elif not node.online and self._rng.random() < self.return_probability:
                node.online = True
                logger.info("simulated node %d is back", node.address)

    def rssi(self, address: int) -> int:
        """Return the RSSI level (0-63) of the node's link to its parent."""
        if address not in self.routes:
            return 0
        return round(63 * self._route_quality(address))

    def _route_quality(self, address: int) -> float:
        """Return the quality of a routed node's link to its parent now."""
        route = self.routes[address]
        if self.timeline is None:
            return route.quality
        return self.quality(route.parent, address)
