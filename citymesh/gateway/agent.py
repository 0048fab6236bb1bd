"""The gateway agent: buffers readings durably and forwards them over MQTT."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt

from citymesh import __version__
from citymesh.errors import CitymeshError
from citymesh.gateway.buffer import ReadingBuffer
from citymesh.gateway.commands import CommandDispatcher
from citymesh.gateway.encoding import BatchEncoder, reading_problem
from citymesh.gateway.intake import Intake
from citymesh.gateway.schedule import SendSchedule
from citymesh.gateway.settings import GatewaySettings
from citymesh.gateway.sources import RecordedReading
from citymesh.gateway.uplink import Uplink
from citymesh.protocol.messages import (
    PROTOCOL_VERSION,
    Birth,
    DeviceInfo,
    Status,
    encode,
)
from citymesh.protocol.topics import Channel, topic_for
from citymesh.transport.connect import CredentialsRejected

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Invalid readings are logged the first time and then every this many.
REJECTION_LOG_EVERY = 1000
# Readings waiting for their group commit at most; beyond that the source
# waits. Ten of the default batches, about 1.3 MB as Python objects.
MAX_PENDING_READINGS = 10_000


def wall_clock_ms() -> int:
    """Return the system's wall-clock time in ms since the epoch."""
    return time.time_ns() // 1_000_000


def buffer_path(settings: GatewaySettings) -> Path:
    """Return where the gateway's reading buffer lives."""
    return settings.data_dir / f"{settings.gateway}.buffer.sqlite"


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


class GatewayAgent:
    """Accepts readings into a durable buffer and forwards them to the broker.

    A reading is committed to the buffer before anything else happens to it;
    it is deleted only after the broker acknowledged the batch carrying it.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        devices: Sequence[DeviceInfo],
        buffer: ReadingBuffer,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.settings = settings
        self._devices = list(devices)
        self.buffer = buffer
        self.clock = clock
        self.encoder = BatchEncoder(settings.tenant, settings.site, settings.gateway)
        publish = settings.publish
        self.schedule = SendSchedule(
            publish.batch_max_points,
            publish.batch_max_delay_ms / 1000,
            publish.replay_max_readings_per_s,
        )
        # One worker thread owns every buffer call, in submission order, so
        # fsyncs never block the event loop.
        self._io = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"gateway-buffer-{settings.gateway}"
        )
        self.intake = Intake(
            self._commit,
            settings.buffer.commit_interval_ms / 1000,
            publish.batch_max_points,
            MAX_PENDING_READINGS,
        )
        self._control: dict[Channel, tuple[bytes, bool]] = {}
        self.wake = asyncio.Event()
        self.source_done = asyncio.Event()
        self.stopping = asyncio.Event()
        self._boot_ms = clock()
        self._started = time.monotonic()
        self.readings_accepted = 0
        self.readings_rejected = 0
        self.readings_sent = 0
        self.batches_sent = 0
        self.reconnects = 0
        self.last_ack_ms: int | None = None
        self.connected = asyncio.Event()
        self.commands = CommandDispatcher(settings.gateway)
        self.commands.register("ping", self._ping)
        self.commands.register("status", self._status_command)
        self._uplink = Uplink(self)

    def topic(self, channel: Channel) -> str:
        """Return this gateway's topic for `channel`."""
        return topic_for(self.settings.tenant, self.settings.gateway, channel)

    async def in_buffer(self, call: Callable[..., T], *args: Any) -> T:
        """Run a buffer method on the buffer's worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, functools.partial(call, *args))

    async def run(
        self,
        readings: AsyncIterator[Sequence[RecordedReading]],
        stop: asyncio.Event,
        exit_when_done: bool = False,
    ) -> None:
        """Run until `stop` is set, or until the source ends and all is sent.

        With exit_when_done the agent returns once the source is exhausted and
        every buffered reading was acknowledged by the broker.

        Raises:
            CredentialsRejected: the broker rejected the gateway's credentials.
            CitymeshError: a task met a setting or file it cannot use.
        """
        try:
            async with asyncio.TaskGroup() as group:
                acceptor = group.create_task(
                    self._accept_loop(readings), name="gateway-acceptor"
                )
                committer = group.create_task(
                    self.intake.run(), name="gateway-committer"
                )
                publisher = group.create_task(
                    self._uplink.run(), name="gateway-publisher"
                )
                waiters: list[asyncio.Task[object]] = [asyncio.create_task(stop.wait())]
                if exit_when_done:
                    waiters.append(asyncio.create_task(self._drained()))
                await asyncio.wait(
                    [*waiters, publisher], return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in waiters:
                    waiter.cancel()
                # The acceptor commits what it queued before it ends.
                acceptor.cancel()
                await asyncio.gather(acceptor, return_exceptions=True)
                committer.cancel()
                self.stopping.set()
                self.wake.set()
        except ExceptionGroup as group:
            # A rejected credential or a bad setting met by a task is the
            # caller's to report as an error message, not a crash.
            rejected: BaseExceptionGroup[Any] | None = group.subgroup(
                CredentialsRejected
            )
            if rejected is None:
                rejected, rest = group.split(CitymeshError)
                if rejected is None or rest is not None:
                    raise
            raise _first_leaf(rejected) from None
        finally:
            await self.in_buffer(self.buffer.close)
            self._io.shutdown(wait=True)
            logger.info(
                "gateway %s/%s stopped: %d readings accepted, %d sent in %d "
                "batches, %d dropped, %d still buffered",
                self.settings.tenant,
                self.settings.gateway,
                self.readings_accepted,
                self.readings_sent,
                self.batches_sent,
                self.buffer.dropped_total,
                self.buffer.count,
            )

    async def _drained(self) -> None:
        await self.source_done.wait()
        while self.buffer.count > 0:
            await asyncio.sleep(0.05)

    async def _accept_loop(
        self, readings: AsyncIterator[Sequence[RecordedReading]]
    ) -> None:
        try:
            async for chunk in readings:
                valid = self._check(chunk)
                if valid:
                    await self.intake.put(valid)
        finally:
            # source_done is set after the flush, because exit_when_done ends
            # the run once the source is done and the buffer is empty.
            await self.intake.flush()
            self.source_done.set()
            self.wake.set()
            logger.info("gateway %s: reading source finished", self.settings.gateway)

    async def accept(self, readings: Sequence[RecordedReading]) -> None:
        """Check readings and commit the valid ones to the buffer now."""
        valid = self._check(readings)
        if valid:
            await self._commit(valid)

    def _check(self, readings: Sequence[RecordedReading]) -> list[RecordedReading]:
        """Return the valid readings, counting and logging the others."""
        valid = []
        for reading in readings:
            problem = reading_problem(reading)
            if problem is None:
                valid.append(reading)
                continue
            self.readings_rejected += 1
            if self.readings_rejected % REJECTION_LOG_EVERY == 1:
                logger.warning(
                    "gateway %s rejected a reading of %s (%d rejected so far): %s",
                    self.settings.gateway,
                    reading.device,
                    self.readings_rejected,
                    problem,
                )
        return valid

    async def _commit(self, valid: list[RecordedReading]) -> None:
        def commit() -> None:
            self.buffer.append(valid)
            # Counted in the buffer's thread: a stop that cancels this await
            # after the commit must still count what the buffer now holds.
            self.readings_accepted += len(valid)

        await self.in_buffer(commit)
        self.schedule.on_accept(time.monotonic())
        self.wake.set()

    def publish_control(self, channel: Channel, payload: bytes, retain: bool) -> None:
        """Queue a message other than readings, sent before the next readings.

        Only the newest message per channel is kept, because each replaces the
        previous one (a topology map, for example). Unsent messages are resent
        after a reconnect.
        """
        self._control[channel] = (payload, retain)
        self.wake.set()

    def pending_control(self) -> dict[Channel, tuple[bytes, bool]]:
        """Return the control messages waiting to be sent, by channel."""
        return self._control

    def status(self, online: bool = True) -> Status:
        """Return the current status report; call it through `in_buffer`."""
        now = self.clock()
        oldest = self.buffer.oldest_accepted_ms()
        age_s = 0.0 if oldest is None else max(0.0, (now - oldest) / 1000)
        return Status(
            v=PROTOCOL_VERSION,
            tenant=self.settings.tenant,
            gateway=self.settings.gateway,
            sent_ms=now,
            online=online,
            uptime_s=round(time.monotonic() - self._started, 3),
            seq=self.buffer.next_seq,
            readings_sent=self.readings_sent,
            backlog=self.buffer.count,
            backlog_oldest_age_s=round(age_s, 3),
            readings_dropped=self.buffer.dropped_total,
            reconnects=self.reconnects,
            last_ack_ms=self.last_ack_ms,
        )

    def birth(self) -> Birth:
        """Return the birth message announcing this gateway and its devices."""
        return Birth(
            v=PROTOCOL_VERSION,
            tenant=self.settings.tenant,
            gateway=self.settings.gateway,
            site=self.settings.site,
            boot_ms=self._boot_ms,
            software=f"citymesh {__version__}",
            devices=self._devices,
        )

    async def answer(self, client: aiomqtt.Client, payload: bytes) -> None:
        """Run one command and publish its response."""
        response = await self.commands.handle(payload)
        if response is not None:
            await client.publish(self.topic(Channel.RESPONSES), encode(response), qos=1)

    async def _ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True, "echo": args.get("echo")}

    async def _status_command(self, args: dict[str, Any]) -> dict[str, Any]:
        status = await self.in_buffer(self.status)
        return status.model_dump(mode="json")
