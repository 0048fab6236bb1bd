"""`citymesh demo`: the data centre and one replaying gateway in one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from citymesh.gateway.runner import run_gateway
from citymesh.gateway.settings import GatewaySettings, MqttSettings, ReplaySettings
from citymesh.server.runner import DataCentre
from citymesh.server.settings import BrokerSettings, HttpSettings, ServerSettings

logger = logging.getLogger(__name__)


def demo_settings(
    data_dir: Path, http_host: str, http_port: int, broker_port: int
) -> ServerSettings:
    """Return server settings for the demo: embedded broker, store under data_dir."""
    return ServerSettings(
        data_dir=data_dir,
        broker=BrokerSettings(mode="embedded", host="127.0.0.1", port=broker_port),
        http=HttpSettings(host=http_host, port=http_port),
    )


async def run_demo(
    server_settings: ServerSettings,
    replay: ReplaySettings,
    stop: asyncio.Event,
    on_ready: Callable[[DataCentre], None] | None = None,
) -> None:
    """Run the data centre and a replaying gateway until `stop` is set.

    The gateway stops first and delivers what it still holds; the data centre
    then writes every reading its collector accepted before it closes.
    """
    async with DataCentre(server_settings, http_option="--http-port") as centre:
        assert centre.broker_address is not None
        gateway_settings = GatewaySettings(
            tenant="demo",
            site="city",
            gateway="gw-1",
            data_dir=server_settings.data_dir / "gateway",
            mqtt=MqttSettings(url=centre.broker_address.url),
            replay=replay,
        )
        if on_ready is not None:
            on_ready(centre)
        await run_gateway(gateway_settings, stop)
        logger.info("demo gateway stopped; finishing the data centre")
