"""What the connector knows about each node of an IQRF network."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from citymesh.gateway.iqrf.sensors import SensorSpec

logger = logging.getLogger(__name__)

ROLE_COORDINATOR = "coordinator"
ROLE_ROUTER = "router"
ROLE_SENSOR = "sensor"
# IQRF OS RSSI levels run from 0 to 63 in this connector's scale.
# NOTE: the simulator uses the same scale; a real TR module's RSSI byte was
# not compared with it.
RSSI_FULL_SCALE = 63
# A node that missed this many collection rounds in a row counts as offline.
OFFLINE_AFTER_MISSES = 2


@dataclass
class NodeState:
    """Inventory, routing and health of one node, updated as answers come."""

    address: int
    bonded: bool = True
    discovered: bool = False
    mid: int | None = None
    hwpid: int | None = None
    os_version: int | None = None
    os_build: int | None = None
    dpa_version: int | None = None
    sensors: list[SensorSpec] = field(default_factory=list)
    user_peripherals: list[int] = field(default_factory=list)
    hops: int | None = None
    parent: int | None = None
    vrn: int | None = None
    rssi: int | None = None
    last_seen_ms: int | None = None
    misses: int = 0

    @property
    def role(self) -> str:
        """Return coordinator, sensor (a node with sensors) or router."""
        if self.address == 0:
            return ROLE_COORDINATOR
        return ROLE_SENSOR if self.sensors else ROLE_ROUTER

    @property
    def online(self) -> bool:
        """Tell whether the node answered recently."""
        return self.last_seen_ms is not None and self.misses < OFFLINE_AFTER_MISSES

    @property
    def link_quality(self) -> float | None:
        """Return the quality of the link to the parent, 0 to 1, from the RSSI."""
        if self.rssi is None:
            return None
        return round(min(1.0, self.rssi / RSSI_FULL_SCALE), 3)

    @property
    def device(self) -> str:
        """Return the device id of the node's series."""
        return f"node-{self.address}"

    def seen(self, now_ms: int) -> None:
        """Record an answer from the node."""
        self.last_seen_ms = now_ms
        self.misses = 0
