"""An in-process gateway agent whose wall clock is off by a fixed offset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from citymesh.gateway.agent import GatewayAgent, wall_clock_ms
from citymesh.gateway.runner import open_buffer
from citymesh.gateway.settings import GatewaySettings, MqttSettings, PublishSettings
from citymesh.gateway.sources import RecordedReading

# Readings measured by sensors with their own clocks, on the minute in 2015.
READINGS = [
    RecordedReading(
        "room-1", "co2", 1_420_070_400_000 + minute * 60_000, 400.0 + minute
    )
    for minute in range(30)
]


async def _source() -> AsyncIterator[Sequence[RecordedReading]]:
    for start in range(0, len(READINGS), 10):
        yield READINGS[start : start + 10]
        await asyncio.sleep(0.3)


def run_skewed_gateway(
    directory: Path, broker_url: str, tenant: str, gateway: str, offset_ms: int
) -> dict[tuple[str, str], dict[int, float]]:
    """Send READINGS through an agent whose clock is `offset_ms` off; return them."""
    settings = GatewaySettings(
        tenant=tenant,
        site="lab",
        gateway=gateway,
        data_dir=directory,
        mqtt=MqttSettings(url=broker_url),
        publish=PublishSettings(status_interval_s=0.5, batch_max_delay_ms=50),
    )

    def clock() -> int:
        return wall_clock_ms() + offset_ms

    async def main() -> None:
        agent = GatewayAgent(settings, [], open_buffer(settings, clock), clock=clock)
        # The status after the readings carries the skew estimate; 1.5 s of
        # status messages come after the last reading is acknowledged.
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(_source(), stop))
        while agent.readings_sent < len(READINGS):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        stop.set()
        await task

    asyncio.run(main())
    return {("room-1", "co2"): {r.timestamp_ms: r.value for r in READINGS}}
