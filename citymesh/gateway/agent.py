"""The gateway agent: batches readings and forwards them over MQTT."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from citymesh import __version__
from citymesh.gateway.commands import CommandDispatcher
from citymesh.gateway.sequence import SequenceCounter
from citymesh.gateway.settings import GatewaySettings
from citymesh.gateway.sources import RecordedReading
from citymesh.protocol.messages import (
    PROTOCOL_VERSION,
    Birth,
    Death,
    DeviceInfo,
    ReadingsBatch,
    SeriesPoints,
    Status,
    encode,
)
from citymesh.protocol.topics import Channel, topic_for
from citymesh.transport.backoff import Backoff

logger = logging.getLogger(__name__)

# How long a clean stop keeps trying to deliver what is still queued.
DRAIN_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class _Outgoing:
    seq: int
    points: int
    payload: bytes


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GatewayAgent:
    """Forwards readings from a source to the broker, in batches with sequence numbers.

    While the broker is unreachable, batches wait in a bounded in-memory queue;
    when it is full the oldest batch is dropped and counted.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        devices: Sequence[DeviceInfo],
        sequence: SequenceCounter,
    ) -> None:
        self.settings = settings
        self._devices = list(devices)
        self._sequence = sequence
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._control: dict[Channel, tuple[bytes, bool]] = {}
        self._wake = asyncio.Event()
        self._source_done = asyncio.Event()
        self._stopping = asyncio.Event()
        self._boot_ms = _now_ms()
        self._started = time.monotonic()
        self.readings_sent = 0
        self.batches_sent = 0
        self.batches_dropped = 0
        self.connected = asyncio.Event()
        self.commands = CommandDispatcher(settings.gateway)
        self.commands.register("ping", self._ping)
        self.commands.register("status", self._status_command)

    def _topic(self, channel: Channel) -> str:
        return topic_for(self.settings.tenant, self.settings.gateway, channel)

    async def run(
        self,
        readings: AsyncIterator[Sequence[RecordedReading]],
        stop: asyncio.Event,
        exit_when_done: bool = False,
    ) -> None:
        """Run until `stop` is set, or until the source ends and all is sent.

        With exit_when_done the agent returns once the source is exhausted and
        every batch was acknowledged by the broker.
        """
        async with asyncio.TaskGroup() as group:
            batcher = group.create_task(
                self._batch_loop(readings), name="gateway-batcher"
            )
            publisher = group.create_task(
                self._publish_loop(), name="gateway-publisher"
            )
            waiters: list[asyncio.Task[object]] = [asyncio.create_task(stop.wait())]
            if exit_when_done:
                waiters.append(asyncio.create_task(self._drained()))
            await asyncio.wait(
                [*waiters, publisher], return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()
            # The batcher queues its partial batch as it ends, so the
            # publisher's final drain sees it.
            batcher.cancel()
            await asyncio.gather(batcher, return_exceptions=True)
            self._stopping.set()
            self._wake.set()
        self._sequence.close()
        logger.info(
            "gateway %s/%s stopped: %d readings in %d batches sent, "
            "%d batches dropped, "
            "%d still queued",
            self.settings.tenant,
            self.settings.gateway,
            self.readings_sent,
            self.batches_sent,
            self.batches_dropped,
            len(self._outbox),
        )

    async def _drained(self) -> None:
        await self._source_done.wait()
        while self._outbox:
            await asyncio.sleep(0.05)

    async def _pump(
        self,
        readings: AsyncIterator[Sequence[RecordedReading]],
        chunks: asyncio.Queue[Sequence[RecordedReading] | None],
    ) -> None:
        try:
            async for chunk in readings:
                await chunks.put(chunk)
        finally:
            await chunks.put(None)

    async def _batch_loop(
        self, readings: AsyncIterator[Sequence[RecordedReading]]
    ) -> None:
        # The source runs in its own task: a timeout on the queue is safe,
        # whereas cancelling the source's own __anext__ would close it.
        chunks: asyncio.Queue[Sequence[RecordedReading] | None] = asyncio.Queue(16)
        pump = asyncio.create_task(self._pump(readings, chunks), name="gateway-source")
        pending: list[RecordedReading] = []
        deadline = 0.0
        publish = self.settings.publish
        try:
            while True:
                timeout = None if not pending else max(0.0, deadline - time.monotonic())
                try:
                    chunk = await asyncio.wait_for(chunks.get(), timeout)
                except TimeoutError:
                    chunk = ()
                if chunk is None:
                    break
                if chunk:
                    if not pending:
                        deadline = time.monotonic() + publish.batch_max_delay_ms / 1000
                    pending.extend(chunk)
                while len(pending) >= publish.batch_max_points:
                    self._enqueue(pending[: publish.batch_max_points])
                    pending = pending[publish.batch_max_points :]
                if pending and time.monotonic() >= deadline:
                    self._enqueue(pending)
                    pending = []
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            if pending:
                self._enqueue(pending)
            self._source_done.set()
            logger.info("gateway %s: reading source finished", self.settings.gateway)

    def _enqueue(self, readings: Sequence[RecordedReading]) -> None:
        grouped: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for r in readings:
            grouped.setdefault((r.device, r.quantity), []).append(
                (r.timestamp_ms, r.value)
            )
        seq = self._sequence.next()
        batch = ReadingsBatch(
            v=PROTOCOL_VERSION,
            tenant=self.settings.tenant,
            gateway=self.settings.gateway,
            site=self.settings.site,
            seq=seq,
            sent_ms=_now_ms(),
            series=[
                SeriesPoints(device=device, quantity=quantity, points=points)
                for (device, quantity), points in grouped.items()
            ],
        )
        if len(self._outbox) >= self.settings.publish.buffer_max_batches:
            dropped = self._outbox.popleft()
            self.batches_dropped += 1
            if self.batches_dropped == 1 or self.batches_dropped % 1000 == 0:
                logger.warning(
                    "gateway %s buffer full: dropped batch %d "
                    "(%d batches dropped so far)",
                    self.settings.gateway,
                    dropped.seq,
                    self.batches_dropped,
                )
        self._outbox.append(_Outgoing(seq, len(readings), encode(batch)))
        self._wake.set()

    def publish_control(self, channel: Channel, payload: bytes, retain: bool) -> None:
        """Queue a message other than readings, sent before the next readings.

        Only the newest message per channel is kept, because each replaces the
        previous one (a topology map, for example). Unsent messages are resent
        after a reconnect.
        """
        self._control[channel] = (payload, retain)
        self._wake.set()

    def status(self, online: bool = True) -> Status:
        """Return the current status report."""
        return Status(
            v=PROTOCOL_VERSION,
            tenant=self.settings.tenant,
            gateway=self.settings.gateway,
            sent_ms=_now_ms(),
            online=online,
            uptime_s=round(time.monotonic() - self._started, 3),
            seq=self._sequence.current,
            readings_sent=self.readings_sent,
            backlog=len(self._outbox),
        )

    def _birth(self) -> Birth:
        return Birth(
            v=PROTOCOL_VERSION,
            tenant=self.settings.tenant,
            gateway=self.settings.gateway,
            site=self.settings.site,
            boot_ms=self._boot_ms,
            software=f"citymesh {__version__}",
            devices=self._devices,
        )

    async def _publish_loop(self) -> None:
        mqtt = self.settings.mqtt
        address = mqtt.address()
        backoff = Backoff(cap_s=mqtt.reconnect_max_s)
        death = Death(
            v=PROTOCOL_VERSION,
            tenant=self.settings.tenant,
            gateway=self.settings.gateway,
        )
        will = aiomqtt.Will(
            self._topic(Channel.DEATH), encode(death), qos=1, retain=True
        )
        while True:
            try:
                async with aiomqtt.Client(
                    address.host,
                    address.port,
                    identifier=self.settings.client_id,
                    username=mqtt.username,
                    password=mqtt.password,
                    will=will,
                    keepalive=mqtt.keepalive_s,
                    timeout=mqtt.connect_timeout_s,
                ) as client:
                    await client.publish(
                        self._topic(Channel.BIRTH),
                        encode(self._birth()),
                        qos=1,
                        retain=True,
                    )
                    # An empty retained message clears the previous session's
                    # last will, so a new subscriber does not see us as dead.
                    await client.publish(
                        self._topic(Channel.DEATH), b"", qos=1, retain=True
                    )
                    logger.info(
                        "gateway %s/%s connected to %s as %s",
                        self.settings.tenant,
                        self.settings.gateway,
                        address,
                        self.settings.client_id,
                    )
                    backoff.reset()
                    self.connected.set()
                    await client.subscribe(self._topic(Channel.COMMANDS), qos=1)
                    receiver = asyncio.create_task(
                        self._receive_commands(client), name="gateway-commands"
                    )
                    receiver.add_done_callback(lambda _: self._wake.set())
                    try:
                        await self._send_while_connected(client, receiver)
                    finally:
                        receiver.cancel()
                        await asyncio.gather(receiver, return_exceptions=True)
                    return
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if self._stopping.is_set():
                    logger.warning(
                        "gateway %s stopping without a broker: %d batches not sent",
                        self.settings.gateway,
                        len(self._outbox),
                    )
                    return
                delay = backoff.next_delay()
                logger.warning(
                    "gateway %s: broker %s unreachable (%s); retrying in %.1f s",
                    self.settings.gateway,
                    address,
                    exc,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)

    async def _receive_commands(self, client: aiomqtt.Client) -> None:
        running: set[asyncio.Task[None]] = set()
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            task = asyncio.create_task(self._answer(client, bytes(payload)))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _answer(self, client: aiomqtt.Client, payload: bytes) -> None:
        response = await self.commands.handle(payload)
        if response is not None:
            await client.publish(
                self._topic(Channel.RESPONSES), encode(response), qos=1
            )

    async def _ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True, "echo": args.get("echo")}

    async def _status_command(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.status().model_dump(mode="json")

    async def _send_while_connected(
        self, client: aiomqtt.Client, receiver: asyncio.Task[None]
    ) -> None:
        interval = self.settings.publish.status_interval_s
        next_status = 0.0
        drain_deadline: float | None = None
        while True:
            if receiver.done() and not receiver.cancelled():
                # The command receiver ends only when the connection broke.
                error = receiver.exception()
                raise (
                    error if error is not None else aiomqtt.MqttError("receiver ended")
                )
            now = time.monotonic()
            if now >= next_status:
                await client.publish(
                    self._topic(Channel.STATUS),
                    encode(self.status()),
                    qos=1,
                    retain=True,
                )
                next_status = now + interval
            while self._control:
                channel, (payload, retain) = next(iter(self._control.items()))
                await client.publish(
                    self._topic(channel), payload, qos=1, retain=retain
                )
                if self._control.get(channel) == (payload, retain):
                    del self._control[channel]
            while self._outbox:
                item = self._outbox[0]
                # aiomqtt returns from a QoS 1 publish once the broker's PUBACK came.
                await client.publish(self._topic(Channel.READINGS), item.payload, qos=1)
                if self._outbox and self._outbox[0] is item:
                    self._outbox.popleft()
                self.readings_sent += item.points
                self.batches_sent += 1
            if self._stopping.is_set():
                if drain_deadline is None:
                    drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
                if not self._outbox or time.monotonic() >= drain_deadline:
                    await self._say_goodbye(client)
                    return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), max(0.0, next_status - time.monotonic())
                )

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        await client.publish(
            self._topic(Channel.STATUS),
            encode(self.status(online=False)),
            qos=1,
            retain=True,
        )
        logger.info(
            "gateway %s/%s disconnecting cleanly",
            self.settings.tenant,
            self.settings.gateway,
        )
