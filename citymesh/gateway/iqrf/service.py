"""An IQRF network behind a gateway agent: readings, topology and commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from iqrfpy.itransport import ITransport

from citymesh.gateway.commands import CommandDispatcher, CommandError
from citymesh.gateway.iqrf import outputs
from citymesh.gateway.iqrf.collection import collect
from citymesh.gateway.iqrf.connector import IqrfConnector
from citymesh.gateway.iqrf.errors import IqrfError
from citymesh.gateway.iqrf.network import NodeState
from citymesh.gateway.iqrf.settings import IqrfSettings
from citymesh.gateway.sources import RecordedReading
from citymesh.protocol.messages import PROTOCOL_VERSION, DeviceInfo, SensorInfo
from citymesh.protocol.topics import Channel
from citymesh.protocol.topology import Topology, TopologyNode, encode_topology

logger = logging.getLogger(__name__)

T = TypeVar("T")
TopologySink = Callable[[Channel, bytes, bool], None]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class IqrfGateway:
    """Discovers an IQRF network, collects its sensors and reports its map.

    `start()` runs discovery and inventory and returns the devices for the
    gateway's birth message; `readings()` then yields one batch per collection
    round. The map goes to `publish` (the agent's publish_control) after each
    discovery and whenever a node's place or online state changes.
    """

    def __init__(
        self,
        transport: ITransport,
        settings: IqrfSettings,
        tenant: str,
        gateway: str,
    ) -> None:
        self.settings = settings
        self.tenant = tenant
        self.gateway = gateway
        self.connector = IqrfConnector(
            transport, timeout_s=settings.request_timeout_s, retries=settings.retries
        )
        self.publish: TopologySink | None = None
        self.rounds = 0
        self._last_map: list[TopologyNode] | None = None
        self._last_discovery = 0.0

    async def start(self) -> list[DeviceInfo]:
        """Discover the network, read every node and return the sensor devices."""
        settings = self.settings
        await self.connector.set_hops(settings.request_hops, settings.response_hops)
        await self.connector.discover(settings.tx_power, settings.discovery_max_address)
        await self.connector.inventory()
        self._last_discovery = time.monotonic()
        devices = self.devices()
        logger.info(
            "IQRF network of gateway %s: %d nodes, %d with sensors",
            self.gateway,
            len(self.connector.nodes) - 1,
            len(devices),
        )
        self.report_topology(force=True)
        return devices

    def devices(self) -> list[DeviceInfo]:
        """Describe every node with forwarded sensors as a device."""
        step = max(1, round(self.settings.collect_interval_s))
        devices = []
        for node in sorted(self.connector.nodes.values(), key=lambda n: n.address):
            quantities = _quantities(node)
            if not quantities:
                continue
            devices.append(
                DeviceInfo(
                    device=node.device,
                    name=f"IQRF node {node.address} (MID {node.mid or 0:08X})",
                    sensors=[SensorInfo(quantity=q, step_s=step) for q in quantities],
                )
            )
        return devices

    async def readings(
        self, stop: asyncio.Event
    ) -> AsyncIterator[list[RecordedReading]]:
        """Yield the readings of each collection round until `stop` is set."""
        interval = self.settings.collect_interval_s
        while not stop.is_set():
            started = time.monotonic()
            if started - self._last_discovery >= self.settings.rediscover_interval_s:
                await self._rediscover()
            try:
                values = await collect(self.connector)
            except IqrfError as exc:
                logger.warning("IQRF collection round failed: %s", exc)
                values = []
            self.rounds += 1
            now_ms = _now_ms()
            batch = [
                RecordedReading(device, quantity, now_ms, value.value)
                for value in values
                if value.value is not None
                for device, quantity in [_series_of(value.address, value.spec)]
                if quantity is not None
            ]
            self.report_topology()
            if batch:
                yield batch
            with contextlib.suppress(TimeoutError):
                remaining = max(0.0, interval - (time.monotonic() - started))
                await asyncio.wait_for(stop.wait(), remaining)

    async def _rediscover(self) -> None:
        try:
            await self.connector.discover(
                self.settings.tx_power, self.settings.discovery_max_address
            )
        except IqrfError as exc:
            logger.warning("IQRF rediscovery failed: %s", exc)
        self._last_discovery = time.monotonic()
        self.report_topology(force=True)

    def topology(self) -> Topology:
        """Return the current network map."""
        return Topology(
            v=PROTOCOL_VERSION,
            tenant=self.tenant,
            gateway=self.gateway,
            sent_ms=_now_ms(),
            nodes=self._map(),
        )

    def _map(self) -> list[TopologyNode]:
        nodes = []
        for node in sorted(self.connector.nodes.values(), key=lambda n: n.address):
            quantities = _quantities(node)
            nodes.append(
                TopologyNode(
                    address=node.address,
                    role=node.role,  # type: ignore[arg-type]
                    device=node.device if quantities else None,
                    mid=node.mid,
                    hwpid=node.hwpid,
                    parent=node.parent,
                    hops=node.hops,
                    link_quality=node.link_quality,
                    last_seen_ms=node.last_seen_ms,
                    online=True if node.address == 0 else node.online,
                    quantities=quantities,
                )
            )
        return nodes

    def report_topology(self, force: bool = False) -> None:
        """Publish the map when forced or when a node's place or state changed."""
        current = self._map()
        unchanged = self._last_map is not None and [_shape(n) for n in current] == [
            _shape(n) for n in self._last_map
        ]
        if unchanged and not force:
            return
        self._last_map = current
        if self.publish is not None:
            message = self.topology()
            self.publish(Channel.TOPOLOGY, encode_topology(message), True)
            logger.info(
                "gateway %s reports its IQRF map: %d nodes", self.gateway, len(current)
            )

    def register_commands(self, dispatcher: CommandDispatcher) -> None:
        """Make the data centre's IQRF commands reach this network."""
        dispatcher.register("iqrf_discovery", self._discovery_command)
        dispatcher.register("iqrf_bond", self._bond_command)
        dispatcher.register("iqrf_unbond", self._unbond_command)
        dispatcher.register("iqrf_set_hops", self._set_hops_command)
        dispatcher.register("iqrf_output", self._output_command)
        dispatcher.register("iqrf_topology", self._topology_command)

    async def _discovery_command(self, args: dict[str, Any]) -> dict[str, Any]:
        tx_power = _int_arg(args, "tx_power", self.settings.tx_power, 0, 7)
        max_address = _int_arg(
            args, "max_address", self.settings.discovery_max_address, 0, 239
        )
        found = await self._guard(self.connector.discover(tx_power, max_address))
        await self._guard(self.connector.inventory())
        self._last_discovery = time.monotonic()
        self.report_topology(force=True)
        return {"discovered": found, "nodes": len(self.connector.nodes) - 1}

    async def _bond_command(self, args: dict[str, Any]) -> dict[str, Any]:
        address = _int_arg(args, "address", 0, 0, 239)
        mid = args.get("mid")
        if mid is None:
            result = await self._guard(self.connector.bond(address))
        else:
            ibk = args.get("ibk", [0] * 16)
            if not isinstance(mid, int) or not isinstance(ibk, list):
                raise CommandError("mid must be an integer and ibk a list of 16 bytes")
            result = await self._guard(self.connector.smart_connect(mid, ibk, address))
        self.report_topology(force=True)
        return result

    async def _unbond_command(self, args: dict[str, Any]) -> dict[str, Any]:
        address = _int_arg(args, "address", None, 1, 239)
        result = await self._guard(self.connector.unbond(address))
        self.report_topology(force=True)
        return result

    async def _set_hops_command(self, args: dict[str, Any]) -> dict[str, Any]:
        request_hops = _int_arg(args, "request_hops", 0xFF, 0, 0xFF)
        response_hops = _int_arg(args, "response_hops", 0xFF, 0, 0xFF)
        return await self._guard(self.connector.set_hops(request_hops, response_hops))

    async def _output_command(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._guard(outputs.set_output(self.connector, args))
        except outputs.OutputArgumentError as exc:
            raise CommandError(str(exc)) from exc

    async def _topology_command(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.topology().model_dump(mode="json")

    async def _guard(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except IqrfError as exc:
            raise CommandError(str(exc)) from exc


def _int_arg(
    args: dict[str, Any], name: str, default: int | None, low: int, high: int
) -> int:
    value = args.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise CommandError(
            f"invalid {name} {value!r}: use an integer from {low} to {high}"
        )
    return value


def _series_of(address: int, spec: Any) -> tuple[str, str | None]:
    device = (
        f"node-{address}"
        if spec.type_index == 0
        else f"node-{address}-{spec.type_index + 1}"
    )
    return device, spec.quantity


def _quantities(node: NodeState) -> list[str]:
    return sorted({s.quantity for s in node.sensors if s.quantity is not None})


def _shape(node: TopologyNode) -> tuple[object, ...]:
    return (node.address, node.role, node.parent, node.hops, node.online, node.mid)
