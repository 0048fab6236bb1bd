"""The latest network map of each gateway, kept in memory and in the store."""

from __future__ import annotations

import asyncio
import logging

from citymesh.collector.events import Event, EventHub
from citymesh.errors import MessageRejected
from citymesh.protocol.topology import Topology, decode_topology, encode_topology
from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)


def _state_key(tenant: str, gateway: str) -> str:
    return f"topology/{tenant}/{gateway}"


class TopologyStore:
    """Keeps the newest topology message per gateway across restarts."""

    def __init__(self, store: TimeSeriesStore, hub: EventHub, max_bytes: int) -> None:
        self._store = store
        self._hub = hub
        self._max_bytes = max_bytes
        self._latest: dict[tuple[str, str], Topology] = {}

    async def accept(self, tenant: str, gateway: str, payload: bytes) -> Topology:
        """Validate a map from the gateway's topology topic and keep it.

        Raises:
            MessageRejected: the payload is invalid or names another gateway.
        """
        topology = decode_topology(payload, self._max_bytes)
        if (topology.tenant, topology.gateway) != (tenant, gateway):
            raise MessageRejected(
                "topic_mismatch",
                f"payload claims {topology.tenant}/{topology.gateway} but arrived "
                f"on the topic of {tenant}/{gateway}",
            )
        self._latest[(tenant, gateway)] = topology
        await asyncio.to_thread(
            self._store.set_state,
            {_state_key(tenant, gateway): encode_topology(topology).decode()},
        )
        self._hub.publish(
            Event(
                "topology",
                {"tenant": tenant, "gateway": gateway, "nodes": len(topology.nodes)},
            )
        )
        logger.info(
            "gateway %s/%s reported a map of %d nodes",
            tenant,
            gateway,
            len(topology.nodes),
        )
        return topology

    def latest(self, tenant: str, gateway: str) -> Topology | None:
        """Return the newest map of a gateway, or None if it never sent one."""
        key = (tenant, gateway)
        if key not in self._latest:
            saved = self._store.get_state(_state_key(tenant, gateway))
            if saved is None:
                return None
            try:
                self._latest[key] = decode_topology(saved.encode(), self._max_bytes)
            except MessageRejected as exc:
                logger.warning(
                    "stored map of %s/%s is unreadable: %s", tenant, gateway, exc
                )
                return None
        return self._latest[key]
