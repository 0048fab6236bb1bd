"""The IQRF connector: inventory, discovery, sensor collection and outputs.

Every request is an iqrfpy request sent through an iqrfpy transport (the
IQRF Gateway Daemon over MQTT, or the simulated mesh). Transports block, so
each request runs in a worker thread, one at a time as an IQRF coordinator
takes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from iqrfpy.exceptions import (
    DpaRequestTimeoutError,
    JsonRequestTimeoutError,
    TransportNotConnectedError,
)
from iqrfpy.irequest import IRequest
from iqrfpy.iresponse import IResponse
from iqrfpy.itransport import ITransport
from iqrfpy.peripherals.coordinator import requests as coordinator
from iqrfpy.peripherals.coordinator import responses as coordinator_responses
from iqrfpy.peripherals.eeeprom import requests as eeeprom
from iqrfpy.peripherals.eeeprom import responses as eeeprom_responses
from iqrfpy.peripherals.os import requests as os_requests
from iqrfpy.peripherals.os import responses as os_responses
from iqrfpy.peripherals.sensor import requests as sensor
from iqrfpy.peripherals.sensor import responses as sensor_responses
from iqrfpy.utils.dpa import ResponseCodes

from citymesh.gateway.iqrf.addresses import MAX_NODE_ADDRESS
from citymesh.gateway.iqrf.dpa import RETRYABLE_RCODES, rcode_name
from citymesh.gateway.iqrf.errors import DpaError, DpaTimeout
from citymesh.gateway.iqrf.network import NodeState
from citymesh.gateway.iqrf.sensors import (
    SensorValue,
    decode_read_with_types,
    specs_from_enumeration,
)

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=IResponse)

# Addresses of the discovery results in the coordinator's external EEPROM,
# one byte per node: virtual routing number, zone (hops) and parent's VRN.
# NOTE: after the DPA technical guide's coordinator memory map; checked only
# against the simulator, which serves the same layout.
EEEPROM_VRN = 0x5000
EEEPROM_ZIN = 0x5200
EEEPROM_PARENT_VRN = 0x5300
EEEPROM_MAX_READ = 54
# Discovery at full power over every bonded node.
DEFAULT_TX_POWER = 7


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class IqrfConnector:
    """Talks DPA to one IQRF network and keeps its node table.

    Args:
        transport: an initialised iqrfpy transport.
        timeout_s: time allowed per request before it counts as lost.
        retries: further tries after a timeout or a retryable DPA error.
        clock_ms: wall clock for last-seen times and reading timestamps.
    """

    def __init__(
        self,
        transport: ITransport,
        *,
        timeout_s: float = 10.0,
        retries: int = 2,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.transport = transport
        self.timeout_s = timeout_s
        self.retries = retries
        self.clock_ms = clock_ms
        self.nodes: dict[int, NodeState] = {0: NodeState(0)}
        self.missing: Counter[str] = Counter()
        """Missing readings by reason since start."""
        self.timeouts = 0
        self._lock = asyncio.Lock()

    async def request(self, request: IRequest, response_type: type[R]) -> R:
        """Send one request and return its response, retrying where DPA allows.

        Raises:
            DpaTimeout: no response after every try.
            DpaError: the response carries an error code.
        """
        command = type(request).__name__.removesuffix("Request")
        attempts = 1 + self.retries
        for attempt in range(1, attempts + 1):
            try:
                async with self._lock:
                    response = await asyncio.to_thread(
                        self.transport.send_and_receive, request, self.timeout_s
                    )
            except (DpaRequestTimeoutError, JsonRequestTimeoutError) as exc:
                self.timeouts += 1
                if attempt < attempts:
                    logger.debug(
                        "node %d: %s timed out (try %d of %d): %s",
                        request.nadr,
                        command,
                        attempt,
                        attempts,
                        exc,
                    )
                    continue
                logger.warning(
                    "node %d: %s timed out after %d tries",
                    request.nadr,
                    command,
                    attempts,
                )
                raise DpaTimeout(request.nadr, command, self.timeout_s) from exc
            except TransportNotConnectedError as exc:
                raise DpaTimeout(request.nadr, command, 0.0) from exc
            if response.rcode != ResponseCodes.OK:
                name = rcode_name(response.rcode)
                if response.rcode in RETRYABLE_RCODES and attempt < attempts:
                    logger.info(
                        "node %d: %s failed with %s; retrying",
                        request.nadr,
                        command,
                        name,
                    )
                    continue
                logger.warning(
                    "node %d: %s failed with DPA error %d (%s)",
                    request.nadr,
                    command,
                    response.rcode,
                    name,
                )
                raise DpaError(request.nadr, command, response.rcode, name)
            if not isinstance(response, response_type):
                raise DpaError(request.nadr, command, -1, type(response).__name__)
            self._seen(request.nadr, response)
            return response
        raise AssertionError("unreachable: the loop returns or raises")

    def _seen(self, address: int, response: IResponse) -> None:
        node = self.nodes.get(address)
        if node is not None:
            node.seen(self.clock_ms())
            if address != 0 and response.dpa_value:
                node.rssi = response.dpa_value

    async def refresh_bonds(self) -> list[int]:
        """Read the bonded and discovered node lists from the coordinator."""
        bonded = await self.request(
            coordinator.BondedDevicesRequest(),
            coordinator_responses.BondedDevicesResponse,
        )
        discovered = await self.request(
            coordinator.DiscoveredDevicesRequest(),
            coordinator_responses.DiscoveredDevicesResponse,
        )
        bonded_set = set(bonded.bonded or [])
        discovered_set = set(discovered.discovered or [])
        for address in list(self.nodes):
            if address and address not in bonded_set:
                del self.nodes[address]
        for address in sorted(bonded_set):
            node = self.nodes.setdefault(address, NodeState(address))
            node.bonded = True
            node.discovered = address in discovered_set
        return sorted(bonded_set)

    async def discover(
        self, tx_power: int = DEFAULT_TX_POWER, max_address: int = 0
    ) -> int:
        """Run a Coordinator Discovery, then read the routing tree it built."""
        response = await self.request(
            coordinator.DiscoveryRequest(tx_power=tx_power, max_addr=max_address),
            coordinator_responses.DiscoveryResponse,
        )
        found = response.disc_nr or 0
        logger.info("discovery (TX power %d) reached %d nodes", tx_power, found)
        await self.refresh_bonds()
        await self.read_routing()
        return found

    async def read_routing(self) -> None:
        """Read hops and parents of every node from the coordinator's discovery data."""
        top = max(self.nodes) + 1
        vrn = await self._read_table(EEEPROM_VRN, top)
        zones = await self._read_table(EEEPROM_ZIN, top)
        parents = await self._read_table(EEEPROM_PARENT_VRN, top)
        by_vrn = {vrn[a]: a for a in self.nodes if a and vrn[a]}
        for address, node in self.nodes.items():
            if address == 0:
                node.hops, node.parent, node.vrn = 0, None, 0
                continue
            if not node.discovered or not vrn[address]:
                node.hops = node.parent = node.vrn = None
                continue
            node.vrn = vrn[address]
            node.hops = zones[address]
            node.parent = by_vrn.get(parents[address], 0)

    async def _read_table(self, base: int, length: int) -> list[int]:
        table: list[int] = []
        for offset in range(0, length, EEEPROM_MAX_READ):
            size = min(EEEPROM_MAX_READ, length - offset)
            response = await self.request(
                eeeprom.ReadRequest(nadr=0, address=base + offset, length=size),
                eeeprom_responses.ReadResponse,
            )
            table.extend(response.data or [])
        return table + [0] * (length - len(table))

    async def inventory(self) -> None:
        """Read MID, HWPID, versions and sensors of every bonded node.

        A node that does not respond keeps what was known of it and is tried
        again at the next inventory.
        """
        await self.refresh_bonds()
        for address in sorted(self.nodes):
            if address == 0:
                continue
            try:
                await self.inventory_node(address)
            except (DpaTimeout, DpaError) as exc:
                logger.warning("inventory of node %d incomplete: %s", address, exc)

    async def inventory_node(self, address: int) -> NodeState:
        """Read one node's OS data and, if it has the Sensor standard, its sensors."""
        node = self.nodes.setdefault(address, NodeState(address))
        read = await self.request(
            os_requests.ReadRequest(nadr=address), os_responses.ReadResponse
        )
        data = read.os_read_data
        if data is not None:
            node.mid = data.mid
            node.os_version = data.os_version
            node.os_build = data.os_build
            node.rssi = data.rssi
            node.dpa_version = data.per_enum.dpa_version
            node.hwpid = data.per_enum.hwpid
            node.user_peripherals = list(data.per_enum.user_per)
        if 0x5E in node.user_peripherals:
            enumeration = await self.request(
                sensor.EnumerateRequest(nadr=address),
                sensor_responses.EnumerateResponse,
            )
            node.sensors = specs_from_enumeration(enumeration.sensor_data or [])
        else:
            node.sensors = []
        return node

    async def read_node_sensors(self, address: int) -> list[SensorValue]:
        """Read every sensor of one node with ReadSensorsWithTypes."""
        node = self.nodes[address]
        indexes = [s.index for s in node.sensors]
        response = await self.request(
            sensor.ReadSensorsWithTypesRequest(nadr=address, sensors=indexes),
            sensor_responses.ReadSensorsWithTypesResponse,
        )
        return decode_read_with_types(address, node.sensors, response.sensor_data or [])

    async def bond(self, address: int = 0, retries: int = 1) -> dict[str, Any]:
        """Bond a node waiting for bonding (BondNode), then rediscover."""
        response = await self.request(
            coordinator.BondNodeRequest(req_addr=address, bonding_test_retries=retries),
            coordinator_responses.BondNodeResponse,
        )
        bonded = response.bond_addr
        await self._after_bond_change()
        if bonded is not None and bonded in self.nodes:
            await self.inventory_node(bonded)
        return {"address": bonded, "bonded_nodes": response.dev_nr}

    async def smart_connect(
        self, mid: int, ibk: Sequence[int], address: int = 0
    ) -> dict[str, Any]:
        """Bond the node with this MID and IBK (SmartConnect), then rediscover."""
        response = await self.request(
            coordinator.SmartConnectRequest(
                req_addr=address, bonding_test_retries=1, ibk=list(ibk), mid=mid
            ),
            coordinator_responses.SmartConnectResponse,
        )
        bonded = response.bond_addr
        await self._after_bond_change()
        if bonded is not None and bonded in self.nodes:
            await self.inventory_node(bonded)
        return {"address": bonded, "bonded_nodes": response.dev_nr}

    async def unbond(self, address: int) -> dict[str, Any]:
        """Remove a node's bond at the coordinator (RemoveBond), then rediscover."""
        if not 1 <= address <= MAX_NODE_ADDRESS:
            raise ValueError(f"invalid node address {address}: use 1 to 239")
        response = await self.request(
            coordinator.RemoveBondRequest(bond_addr=address),
            coordinator_responses.RemoveBondResponse,
        )
        await self._after_bond_change()
        return {"address": address, "bonded_nodes": response.dev_nr}

    async def set_hops(self, request_hops: int, response_hops: int) -> dict[str, Any]:
        """Set the hops used for requests and responses (SetHops); 0xFF is automatic."""
        response = await self.request(
            coordinator.SetHopsRequest(
                request_hops=request_hops, response_hops=response_hops
            ),
            coordinator_responses.SetHopsResponse,
        )
        return {
            "previous_request_hops": response.request_hops,
            "previous_response_hops": response.response_hops,
        }

    async def _after_bond_change(self) -> None:
        await self.discover()

    def mark_missed(self, addresses: Sequence[int]) -> None:
        """Count a collection round in which these nodes did not respond."""
        for address in addresses:
            node = self.nodes.get(address)
            if node is not None:
                node.misses += 1
