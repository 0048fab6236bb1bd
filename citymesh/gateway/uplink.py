"""The gateway's MQTT link: connect, pipeline batches, delete them once acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import aiomqtt

from citymesh.gateway.buffer import BufferedBatch
from citymesh.protocol.messages import PROTOCOL_VERSION, Death, encode
from citymesh.protocol.topics import Channel
from citymesh.transport.backoff import Backoff
from citymesh.transport.connect import CredentialsRejected, is_credentials_rejection
from citymesh.transport.tls import certificate_rejection, client_context

if TYPE_CHECKING:
    from citymesh.gateway.agent import GatewayAgent

logger = logging.getLogger(__name__)

# How long a clean stop keeps trying to deliver what is still buffered.
DRAIN_TIMEOUT_S = 10.0
# QoS 1 publishes paho-mqtt may have in flight beyond the readings batches:
# status, control messages and command responses.
EXTRA_INFLIGHT = 8


class Uplink:
    """Keeps the gateway connected and sends its buffer, oldest backlog first."""

    def __init__(self, agent: GatewayAgent) -> None:
        self.agent = agent
        self._inflight: dict[asyncio.Task[None], BufferedBatch] = {}
        self._resend: list[BufferedBatch] = []

    async def run(self) -> None:
        """Connect, send and reconnect with backoff until the agent stops.

        Raises:
            CredentialsRejected: the broker rejected the credentials; retrying
                cannot help, so the agent stops.
        """
        agent = self.agent
        settings = agent.settings
        mqtt = settings.mqtt
        address = mqtt.address()
        tls_context = None
        if address.tls:
            tls_context = client_context(mqtt.ca_file, mqtt.certfile, mqtt.keyfile)
        backoff = Backoff(cap_s=mqtt.reconnect_max_s)
        death = Death(
            v=PROTOCOL_VERSION, tenant=settings.tenant, gateway=settings.gateway
        )
        will = aiomqtt.Will(
            agent.topic(Channel.DEATH), encode(death), qos=1, retain=True
        )
        connects = 0
        while True:
            try:
                async with aiomqtt.Client(
                    address.host,
                    address.port,
                    identifier=settings.client_id,
                    username=mqtt.username,
                    password=mqtt.password,
                    will=will,
                    keepalive=mqtt.keepalive_s,
                    timeout=mqtt.connect_timeout_s,
                    max_inflight_messages=settings.publish.max_inflight
                    + EXTRA_INFLIGHT,
                    tls_context=tls_context,
                ) as client:
                    connects += 1
                    if connects > 1:
                        agent.reconnects += 1
                    await self._announce(client)
                    logger.info(
                        "gateway %s/%s connected to %s as %s (%d readings buffered)",
                        settings.tenant,
                        settings.gateway,
                        address,
                        settings.client_id,
                        agent.buffer.count,
                    )
                    backoff.reset()
                    agent.connected.set()
                    await client.subscribe(agent.topic(Channel.COMMANDS), qos=1)
                    receiver = asyncio.create_task(
                        self._receive_commands(client), name="gateway-commands"
                    )
                    receiver.add_done_callback(lambda _: agent.wake.set())
                    try:
                        await self._send_while_connected(client, receiver)
                    finally:
                        receiver.cancel()
                        await self._abandon_inflight()
                        await asyncio.gather(receiver, return_exceptions=True)
                    return
            except aiomqtt.MqttError as exc:
                agent.connected.clear()
                rejection = None
                if tls_context is not None and mqtt.certfile is not None:
                    # A rejected client certificate arrives as a bare timeout or
                    # disconnect; one probe handshake separates it from a lost link.
                    rejection = await asyncio.to_thread(
                        certificate_rejection, address.host, address.port, tls_context
                    )
                if rejection is not None:
                    logger.error(
                        "gateway %s: broker %s rejected the client certificate "
                        "%s: %s; not retrying. Enrol the gateway again with "
                        "`citymesh gateway enroll`",
                        settings.gateway,
                        address,
                        mqtt.certfile,
                        rejection,
                    )
                    raise CredentialsRejected(
                        f"broker {address} rejected the client certificate "
                        f"{mqtt.certfile} of gateway {settings.gateway}: {rejection}"
                    ) from exc
                if is_credentials_rejection(exc):
                    logger.error(
                        "gateway %s: broker %s rejected the credentials of user "
                        "%r (%s); not retrying. Fix mqtt.username and "
                        "mqtt.password",
                        settings.gateway,
                        address,
                        mqtt.username,
                        exc,
                    )
                    raise CredentialsRejected(
                        f"broker {address} rejected the credentials of gateway "
                        f"{settings.gateway} (user {mqtt.username!r}): {exc}"
                    ) from exc
                if agent.stopping.is_set():
                    logger.warning(
                        "gateway %s stopping without a broker: %d readings stay "
                        "buffered for the next start",
                        settings.gateway,
                        agent.buffer.count,
                    )
                    return
                delay = backoff.next_delay()
                logger.warning(
                    "gateway %s: broker %s unreachable (%s); retrying in %.1f s",
                    settings.gateway,
                    address,
                    exc,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(agent.stopping.wait(), delay)

    async def _announce(self, client: aiomqtt.Client) -> None:
        agent = self.agent
        await client.publish(
            agent.topic(Channel.BIRTH), encode(agent.birth()), qos=1, retain=True
        )
        # An empty retained message clears the previous session's last will,
        # so a new subscriber does not see us as dead.
        await client.publish(agent.topic(Channel.DEATH), b"", qos=1, retain=True)

    async def _receive_commands(self, client: aiomqtt.Client) -> None:
        running: set[asyncio.Task[None]] = set()
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            task = asyncio.create_task(self.agent.answer(client, bytes(payload)))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _abandon_inflight(self) -> None:
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    async def _send_while_connected(
        self, client: aiomqtt.Client, receiver: asyncio.Task[None]
    ) -> None:
        agent = self.agent
        schedule = agent.schedule
        interval = agent.settings.publish.status_interval_s
        next_status = 0.0
        drain_deadline: float | None = None
        schedule.on_connect(agent.buffer.last_id, time.monotonic())
        # Batches formed earlier and never acknowledged go first, with the
        # sequence numbers they were formed with.
        self._resend = await agent.in_buffer(agent.buffer.unacked, agent.encoder)
        while True:
            if receiver.done() and not receiver.cancelled():
                # The command receiver ends only when the connection broke.
                error = receiver.exception()
                raise (
                    error if error is not None else aiomqtt.MqttError("receiver ended")
                )
            self._reap()
            now = time.monotonic()
            if now >= next_status:
                status = await agent.in_buffer(agent.status)
                await client.publish(
                    agent.topic(Channel.STATUS), encode(status), qos=1, retain=True
                )
                next_status = now + interval
            await self._send_control(client)
            flushing = agent.stopping.is_set() or agent.source_done.is_set()
            wait_s = await self._fill_pipeline(client, flushing)
            if agent.stopping.is_set():
                if drain_deadline is None:
                    drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
                drained = not self._inflight and agent.buffer.count == 0
                if drained or time.monotonic() >= drain_deadline:
                    await self._say_goodbye(client)
                    return
            agent.wake.clear()
            timeout = max(0.0, min(wait_s, next_status - time.monotonic()))
            woken = asyncio.create_task(agent.wake.wait())
            await asyncio.wait(
                {woken, *self._inflight},
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            woken.cancel()

    async def _send_control(self, client: aiomqtt.Client) -> None:
        control = self.agent.pending_control()
        while control:
            channel, (payload, retain) = next(iter(control.items()))
            await client.publish(
                self.agent.topic(channel), payload, qos=1, retain=retain
            )
            if control.get(channel) == (payload, retain):
                del control[channel]

    async def _fill_pipeline(self, client: aiomqtt.Client, flushing: bool) -> float:
        """Start publishes up to `max_inflight`; return how long to wait at most."""
        agent = self.agent
        schedule = agent.schedule
        buffer = agent.buffer
        publish = agent.settings.publish
        wait_s = 3600.0
        while len(self._inflight) < publish.max_inflight:
            now = time.monotonic()
            batch: BufferedBatch | None = None
            if self._resend:
                batch = self._resend.pop(0)
            elif schedule.live_due(buffer.last_id, now, flushing):
                batch = await agent.in_buffer(
                    buffer.form_batch,
                    schedule.live_cursor,
                    buffer.last_id,
                    publish.batch_max_points,
                    agent.encoder,
                )
                schedule.took_live(
                    batch.last_id if batch else buffer.last_id, buffer.last_id, now
                )
            elif schedule.backlog_pending:
                backlog_wait = schedule.backlog_wait(now)
                if backlog_wait > 0:
                    wait_s = min(wait_s, backlog_wait)
                    break
                batch = await agent.in_buffer(
                    buffer.form_batch,
                    schedule.backlog_cursor,
                    schedule.boundary,
                    publish.batch_max_points,
                    agent.encoder,
                )
                if batch is None:
                    schedule.backlog_done()
                else:
                    schedule.took_backlog(batch.last_id, batch.points)
            else:
                deadline = schedule.live_deadline(buffer.last_id)
                if deadline is not None:
                    wait_s = min(wait_s, max(0.0, deadline - now))
                break
            if batch is not None:
                self._start_publish(client, batch)
        return wait_s

    def _start_publish(self, client: aiomqtt.Client, batch: BufferedBatch) -> None:
        task = asyncio.create_task(
            self._publish_batch(client, batch), name=f"gateway-publish-{batch.seq}"
        )
        self._inflight[task] = batch
        task.add_done_callback(lambda _: self.agent.wake.set())

    async def _publish_batch(
        self, client: aiomqtt.Client, batch: BufferedBatch
    ) -> None:
        agent = self.agent
        # aiomqtt 2.5's Client.publish waits for paho-mqtt's on_publish callback,
        # which paho calls for QoS 1 only when the broker's PUBACK arrived. So
        # returning here means acknowledged, not merely handed to the library.
        await client.publish(
            agent.topic(Channel.READINGS),
            batch.payload,
            qos=1,
            timeout=agent.settings.mqtt.ack_timeout_s,
        )
        await agent.in_buffer(agent.buffer.acknowledge, batch)
        logger.debug(
            "gateway %s: batch %d (%d readings, ids %d-%d) acknowledged",
            agent.settings.gateway,
            batch.seq,
            batch.points,
            batch.first_id,
            batch.last_id,
        )
        agent.readings_sent += batch.points
        agent.batches_sent += 1
        agent.last_ack_ms = agent.clock()

    def _reap(self) -> None:
        for task in [t for t in self._inflight if t.done()]:
            batch = self._inflight.pop(task)
            if task.cancelled():
                continue
            error = task.exception()
            if error is None:
                continue
            logger.warning(
                "gateway %s: batch %d (%d readings) got no PUBACK: %s",
                self.agent.settings.gateway,
                batch.seq,
                batch.points,
                error,
            )
            raise error

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        agent = self.agent
        status = await agent.in_buffer(agent.status, False)
        await client.publish(
            agent.topic(Channel.STATUS), encode(status), qos=1, retain=True
        )
        logger.info(
            "gateway %s/%s disconnecting cleanly",
            agent.settings.tenant,
            agent.settings.gateway,
        )
