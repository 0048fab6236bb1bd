"""Assemble a gateway agent from its settings and run it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from citymesh.gateway.agent import GatewayAgent, buffer_path, wall_clock_ms
from citymesh.gateway.buffer import ReadingBuffer
from citymesh.gateway.replay import Replay
from citymesh.gateway.sequence import SequenceCounter
from citymesh.gateway.settings import GatewaySettings
from citymesh.gateway.sources import RecordedSource, open_source
from citymesh.protocol.messages import DeviceInfo, SensorInfo

logger = logging.getLogger(__name__)

OCCUPANCY_ROOMS = ("room-1", "room-2", "room-3")
# The I-94 counts have long holes until 2017: none from 2014-08-08 to
# 2015-06-11, then many hours and days missing. From 2017-04-13 15:00 UTC on
# they run for months with at most a few hours missing, so the replay starts
# there and the live chart does not sit idle.
TRAFFIC_START_MS = 1_492_095_600_000


def build_replay(settings: GatewaySettings) -> tuple[Replay, list[DeviceInfo]]:
    """Open the configured recorded sources and the devices they replay."""
    replay_settings = settings.replay
    sources = [
        source
        for name in replay_settings.sources
        for source in open_replay_sources(name, replay_settings.limit)
    ]
    speed = replay_settings.speed or None
    replay = Replay(
        sources,
        speed=speed,
        timestamps=replay_settings.timestamps,
        loop=replay_settings.loop and replay_settings.timestamps == "now",
        max_batch=settings.publish.batch_max_points,
    )
    devices = [d for source in sources for d in source.devices]
    if replay_settings.timestamps == "now" and speed:
        # Stamps are compressed by the speed, so the series' nominal step is too.
        devices = [_compress_steps(d, speed) for d in devices]
    return replay, devices


def open_replay_sources(name: str, limit: int | None) -> list[RecordedSource]:
    """Open a recorded data set as one or more sources that play side by side."""
    if name == "occupancy":
        # The three UCI recordings follow one another in time; as separate
        # sources, each paced from its own start, the three rooms play at once.
        return [
            open_source(name, devices=[room], limit=limit) for room in OCCUPANCY_ROOMS
        ]
    if name == "traffic":
        return [open_source(name, start_ms=TRAFFIC_START_MS, limit=limit)]
    return [open_source(name, limit=limit)]


def _compress_steps(device: DeviceInfo, speed: float) -> DeviceInfo:
    sensors = [
        SensorInfo(quantity=s.quantity, step_s=max(1, round(s.step_s / speed)))
        for s in device.sensors
    ]
    return device.model_copy(update={"sensors": sensors})


def open_buffer(
    settings: GatewaySettings, clock: Callable[[], int] = wall_clock_ms
) -> ReadingBuffer:
    """Open the gateway's reading buffer, which also keeps its sequence number.

    `clock` stamps batches and acceptance times; it must be the agent's clock.
    """
    # Releases before the buffer kept the sequence number in a JSON file; a
    # buffer created next to one continues its numbering.
    legacy = settings.data_dir / f"{settings.gateway}.sequence.json"
    first_seq = SequenceCounter(legacy).current if legacy.exists() else 0
    return ReadingBuffer(
        buffer_path(settings),
        max_bytes=settings.buffer.max_bytes,
        max_age_s=settings.buffer.max_age_s,
        first_seq=first_seq,
        clock=clock,
    )


async def run_gateway(
    settings: GatewaySettings, stop: asyncio.Event, exit_when_done: bool = False
) -> GatewayAgent:
    """Run a gateway agent on the configured source until stopped.

    With source "replay" the recorded data sets are replayed, and
    `exit_when_done` ends the run once they are delivered. With source "iqrf"
    the [iqrf] network is read until `stop` is set.
    """
    if settings.source == "iqrf":
        # Imported here because the IQRF runner builds on this module.
        from citymesh.gateway.iqrf.runner import run_iqrf_gateway

        return await run_iqrf_gateway(settings, settings.iqrf, stop)
    replay, devices = build_replay(settings)
    agent = GatewayAgent(settings, devices, open_buffer(settings))
    logger.info(
        "gateway %s/%s (site %s) starting with %d devices, broker %s",
        settings.tenant,
        settings.gateway,
        settings.site,
        len(devices),
        settings.mqtt.url,
    )
    await agent.run(replay.batches(), stop, exit_when_done=exit_when_done)
    return agent
