"""The collector service: MQTT in, validation, batched idempotent writes out."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from types import TracebackType
from typing import Any

import aiomqtt

from citymesh.collector.clock import SkewEstimator
from citymesh.collector.delivery import (
    Delivery,
    enable_manual_ack,
    responses_filter,
    subscription_filter,
)
from citymesh.collector.events import Event, EventHub
from citymesh.collector.intake import ReadingsIntake, check_origin
from citymesh.collector.sequence import SequenceStates
from citymesh.collector.stats import CollectorStats
from citymesh.collector.topology import TopologyStore
from citymesh.collector.writer import BatchWriter
from citymesh.errors import (
    CommandTimeout,
    MessageRejected,
    TransportError,
)
from citymesh.protocol.messages import (
    PROTOCOL_VERSION,
    Birth,
    Command,
    CommandResponse,
    Death,
    Status,
    decode,
    encode,
)
from citymesh.protocol.topics import Channel, parse_topic, topic_for
from citymesh.registry.store import Registry
from citymesh.server.settings import CollectorSettings
from citymesh.storage.base import TimeSeriesStore
from citymesh.transport.address import BrokerAddress
from citymesh.transport.backoff import Backoff

logger = logging.getLogger(__name__)

# Log the first rejection of each reason at WARNING, later ones at DEBUG with
# a WARNING summary every this many, so a broken gateway cannot flood the log.
REJECTION_LOG_EVERY = 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Collector:
    """Subscribes to every gateway's uplink topics and stores valid readings.

    Use it as an async context manager. Entering starts the receive and write
    loops. Leaving stops receiving and then writes every accepted batch, so a
    clean stop loses no accepted reading.
    """

    def __init__(
        self,
        broker: BrokerAddress,
        store: TimeSeriesStore,
        registry: Registry,
        hub: EventHub,
        settings: CollectorSettings,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._broker = broker
        self._tls_context = tls_context
        self._store = store
        self._registry = registry
        self._hub = hub
        self._settings = settings
        self._username = username
        self._password = password
        self.stats = CollectorStats()
        self._skews: dict[tuple[str, str], SkewEstimator] = {}
        self._intake = ReadingsIntake(
            settings, self.stats, SequenceStates(store), self._skews
        )
        self._batches = BatchWriter(
            store,
            registry,
            hub,
            settings,
            self.stats,
            self._intake.sequences,
            lambda delivery: delivery.ack(self._client),
        )
        self._receiver: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._pending: dict[str, asyncio.Future[CommandResponse]] = {}
        self.topology = TopologyStore(store, hub, settings.max_message_bytes)

    async def __aenter__(self) -> Collector:
        self._writer = asyncio.create_task(self._batches.run(), name="collector-writer")
        self._receiver = asyncio.create_task(
            self._receive_loop(), name="collector-receiver"
        )
        self._receiver.add_done_callback(_log_receiver_failure)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop receiving, then write out everything already accepted."""
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
            self._receiver = None
        if self._writer is not None:
            await self._batches.queue.put(None)
            await self._writer
            self._writer = None
            logger.info("collector stopped: %s", self.stats.as_dict())

    async def send_command(
        self,
        tenant: str,
        gateway: str,
        command: str,
        args: dict[str, Any],
        timeout_s: float,
    ) -> CommandResponse:
        """Send a command to a gateway and wait for its response.

        Raises:
            TransportError: the collector has no broker connection.
            CommandTimeout: no response came within `timeout_s`.
        """
        client = self._client
        if client is None:
            raise TransportError(
                f"cannot send {command!r} to {tenant}/{gateway}: the collector is "
                f"not connected to the broker {self._broker}"
            )
        message = Command(
            v=PROTOCOL_VERSION, id=uuid.uuid4().hex, command=command, args=args
        )
        future: asyncio.Future[CommandResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[message.id] = future
        try:
            await client.publish(
                topic_for(tenant, gateway, Channel.COMMANDS), encode(message), qos=1
            )
            logger.info(
                "command %s (id %s) sent to gateway %s/%s",
                command,
                message.id,
                tenant,
                gateway,
            )
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise CommandTimeout(
                f"gateway {tenant}/{gateway} did not answer {command!r} within "
                f"{timeout_s:g} s; it may be offline"
            ) from None
        except aiomqtt.MqttError as exc:
            raise TransportError(f"sending {command!r} failed: {exc}") from exc
        finally:
            self._pending.pop(message.id, None)

    def idle(self) -> bool:
        """Tell whether every accepted batch has been written."""
        return self._batches.queue.empty() and not self._batches.writing

    async def _receive_loop(self) -> None:
        backoff = Backoff(cap_s=self._settings.reconnect_max_s)
        topic_filter = subscription_filter(
            self._settings.tenant, self._settings.share_group
        )
        while True:
            client = aiomqtt.Client(
                self._broker.host,
                self._broker.port,
                identifier=self._settings.client_id,
                username=self._username,
                password=self._password,
                clean_session=False,
                keepalive=30,
                timeout=10,
                tls_context=self._tls_context,
            )
            # Set before connecting: a persistent session delivers its queued
            # messages right after the CONNACK.
            enable_manual_ack(client)
            try:
                async with client:
                    await client.subscribe(topic_filter, qos=1)
                    if self._settings.share_group is not None:
                        # A command response must reach the collector that sent
                        # the command, whichever member of the group gets it.
                        await client.subscribe(
                            responses_filter(self._settings.tenant), qos=1
                        )
                    logger.info(
                        "collector %s connected to %s, subscribed to %s",
                        self._settings.client_id,
                        self._broker,
                        topic_filter,
                    )
                    backoff.reset()
                    self._client = client
                    self.subscribed.set()
                    async for message in client.messages:
                        payload = message.payload
                        if not isinstance(payload, bytes | bytearray):
                            payload = str(payload).encode()
                        await self.handle(
                            message.topic.value,
                            bytes(payload),
                            Delivery.of(client, message),
                        )
            except aiomqtt.MqttError as exc:
                self._client = None
                self.subscribed.clear()
                delay = backoff.next_delay()
                logger.warning(
                    "collector lost broker %s (%s); reconnecting in %.1f s",
                    self._broker,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def handle(
        self, topic: str, payload: bytes, delivery: Delivery | None = None
    ) -> None:
        """Validate one uplink message, queue or apply it, then acknowledge it.

        A readings batch is acknowledged once it is stored, anything else once
        handled. Bad input is rejected, counted and acknowledged, never raised.
        """
        delivery = delivery or Delivery(None)
        try:
            await self._dispatch(topic, payload, delivery)
        except Exception:
            # A bug met by one message must not stop the receive loop; the
            # message is counted and acknowledged so it is not redelivered
            # forever.
            self.stats.rejected["internal_error"] += 1
            logger.exception(
                "collector failed on a message on %s (%d bytes); it is dropped",
                topic,
                len(payload),
            )
            delivery.deferred = False
        if not delivery.deferred:
            delivery.ack(self._client)

    async def _dispatch(self, topic: str, payload: bytes, delivery: Delivery) -> None:
        self.stats.messages_received += 1
        try:
            where = parse_topic(topic)
        except ValueError as exc:
            self._reject(topic, "?", MessageRejected("invalid_topic", str(exc)))
            return
        gateway = f"{where.tenant}/{where.gateway}"
        if not payload and where.channel in (
            Channel.BIRTH,
            Channel.STATUS,
            Channel.DEATH,
            Channel.TOPOLOGY,
        ):
            return  # a cleared retained message
        if where.channel is not Channel.COMMANDS:
            # Only enrolled, unrevoked gateways of known tenants may send.
            refused = self._registry.check_origin(where.tenant, where.gateway)
            if refused is not None:
                self._reject(topic, gateway, refused)
                return
        try:
            if where.channel is Channel.READINGS:
                await self._batches.queue.put(
                    self._intake.accept(where.tenant, where.gateway, payload, delivery)
                )
            elif where.channel is Channel.BIRTH:
                birth = decode(payload, Birth, self._settings.max_message_bytes)
                check_origin(birth.tenant, birth.gateway, where.tenant, where.gateway)
                await self._on_birth(birth)
            elif where.channel is Channel.STATUS:
                status = decode(payload, Status, self._settings.max_message_bytes)
                check_origin(status.tenant, status.gateway, where.tenant, where.gateway)
                await self._record_status(status, delivery)
            elif where.channel is Channel.RESPONSES:
                response = decode(
                    payload, CommandResponse, self._settings.max_message_bytes
                )
                future = self._pending.pop(response.id, None)
                if future is None:
                    # With shared subscriptions every member receives every response.
                    logger.debug(
                        "response %s from gateway %s matches no pending command",
                        response.id,
                        gateway,
                    )
                elif not future.done():
                    future.set_result(response)
            elif where.channel is Channel.TOPOLOGY:
                await self.topology.accept(where.tenant, where.gateway, payload)
            elif where.channel is Channel.DEATH:
                death = decode(payload, Death, self._settings.max_message_bytes)
                check_origin(death.tenant, death.gateway, where.tenant, where.gateway)
                await asyncio.to_thread(
                    self._registry.record_death, where.tenant, where.gateway, _now_ms()
                )
                self._publish_gateway(where.tenant, where.gateway, False)
                logger.warning("gateway %s went offline (last will)", gateway)
        except MessageRejected as exc:
            self._reject(topic, gateway, exc)

    def _reject(self, topic: str, gateway: str, exc: MessageRejected) -> None:
        self.stats.rejected[exc.reason] += 1
        count = self.stats.rejected[exc.reason]
        if count == 1 or count % REJECTION_LOG_EVERY == 0:
            logger.warning(
                "rejected message from gateway %s on %s (%s, %d so far): %s",
                gateway,
                topic,
                exc.reason,
                count,
                exc.detail,
            )
        else:
            logger.debug("rejected message from %s on %s: %s", gateway, topic, exc)

    def _skew(self, key: tuple[str, str]) -> SkewEstimator:
        return self._skews.setdefault(key, SkewEstimator())

    async def _record_status(self, status: Status, delivery: Delivery) -> None:
        received_ms = _now_ms()
        key = (status.tenant, status.gateway)
        if not delivery.retained:
            self._skew(key).add(status.sent_ms, received_ms)
        skew = self._skew(key).estimate()
        extra: dict[str, Any] = {}
        if skew is not None:
            extra = {"clock_skew_ms": skew.offset_ms, "clock_skewed": skew.flagged}
            if skew.flagged:
                logger.warning(
                    "gateway %s/%s clock is off by %+.1f s; its readings keep "
                    "their own timestamps",
                    status.tenant,
                    status.gateway,
                    skew.offset_ms / 1000,
                )
        await asyncio.to_thread(
            self._registry.record_status, status, received_ms, extra
        )
        self._publish_gateway(
            status.tenant,
            status.gateway,
            status.online,
            {**status.model_dump(mode="json"), **extra},
        )

    async def _on_birth(self, birth: Birth) -> None:
        self._intake.note_steps(birth)
        await asyncio.to_thread(self._registry.record_birth, birth, _now_ms())
        self._intake.note_registered(birth)
        self._publish_gateway(birth.tenant, birth.gateway, True)

    def _publish_gateway(
        self,
        tenant: str,
        gateway: str,
        online: bool,
        status: dict[str, Any] | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "tenant": tenant,
            "gateway": gateway,
            "online": online,
            "last_seen": _now_ms(),
        }
        if status is not None:
            data["status"] = status
        self._hub.publish(Event("gateway", data))


def _log_receiver_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.critical(
            "collector receive loop stopped: no more messages are read",
            exc_info=task.exception(),
        )
