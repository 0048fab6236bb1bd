"""Run a gateway agent whose readings come from an IQRF network."""

from __future__ import annotations

import asyncio
import logging

from iqrfpy.itransport import ITransport

from citymesh.gateway.agent import GatewayAgent
from citymesh.gateway.iqrf.service import IqrfGateway
from citymesh.gateway.iqrf.settings import IqrfSettings
from citymesh.gateway.iqrf.transports import open_transport
from citymesh.gateway.runner import open_buffer
from citymesh.gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)


async def run_iqrf_gateway(
    settings: GatewaySettings,
    iqrf: IqrfSettings,
    stop: asyncio.Event,
    transport: ITransport | None = None,
    started: asyncio.Future[IqrfGateway] | None = None,
) -> GatewayAgent:
    """Discover the IQRF network, then forward its readings until `stop` is set.

    Args:
        settings: the gateway's identity, broker and publishing settings.
        iqrf: the network's transport and collection settings.
        stop: set to stop the gateway cleanly.
        transport: an open iqrfpy transport to use instead of the configured one.
        started: receives the running network once discovery is done.
    """
    if transport is None:
        transport = await asyncio.to_thread(open_transport, iqrf)
    network = IqrfGateway(transport, iqrf, settings.tenant, settings.gateway)
    try:
        devices = await network.start()
        agent = GatewayAgent(settings, devices, open_buffer(settings))
        network.publish = agent.publish_control
        network.register_commands(agent.commands)
        network.report_topology(force=True)
        if started is not None and not started.done():
            started.set_result(network)
        logger.info(
            "gateway %s/%s (site %s) starting with an IQRF network of %d devices",
            settings.tenant,
            settings.gateway,
            settings.site,
            len(devices),
        )
        await agent.run(network.readings(stop), stop)
    finally:
        await asyncio.to_thread(transport.terminate)
    return agent
