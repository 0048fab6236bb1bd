"""Shared fixtures: free ports, a data centre running in a thread, a publisher."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from citymesh.gateway.settings import MqttSettings
from citymesh.protocol.messages import ReadingsBatch, encode
from citymesh.protocol.topics import Channel, topic_for
from citymesh.registry.access import Scope
from citymesh.registry.identities import Identities
from citymesh.server.runner import DataCentre
from citymesh.server.settings import (
    BrokerSettings,
    CollectorSettings,
    HttpSettings,
    ServerSettings,
)
from citymesh.transport.address import BrokerAddress

MOSQUITTO_URL = "mqtt://127.0.0.1:1883"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def tenant() -> str:
    """A tenant id unique to the test, so tests sharing a broker do not mix."""
    return f"t{uuid.uuid4().hex[:10]}"


@dataclass
class RunningServer:
    """A DataCentre running on its own event loop in a background thread."""

    centre: DataCentre
    loop: asyncio.AbstractEventLoop
    tenant: str
    admin_key: str
    published: list[str] = field(default_factory=list)
    logins: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        """Return the base URL of the HTTP API."""
        return self.centre.http_url

    @property
    def broker(self) -> BrokerAddress:
        """Return the address of the broker the collector uses."""
        assert self.centre.broker_address is not None
        return self.centre.broker_address

    @property
    def identities(self) -> Identities:
        """Return the registry's users, keys and gateway credentials."""
        assert self.centre.registry is not None
        return self.centre.registry.identities

    @property
    def headers(self) -> dict[str, str]:
        """Return HTTP headers carrying the platform operator's admin key."""
        return {"Authorization": f"Bearer {self.admin_key}"}

    def gateway_login(self, tenant: str, gateway: str) -> tuple[str, str]:
        """Return (username, password) of a gateway, enrolling it on first use."""
        login = self.logins.get((tenant, gateway))
        if login is None:
            if not self.identities.tenant_exists(tenant):
                self.identities.create_tenant(tenant)
            credentials = self.identities.enrol(tenant, gateway)
            login = (credentials.username, credentials.password)
            self.logins[(tenant, gateway)] = login
        return login

    def gateway_mqtt(self, gateway: str) -> MqttSettings:
        """Return MQTT settings with the login of an enrolled gateway of the tenant."""
        username, password = self.gateway_login(self.tenant, gateway)
        return MqttSettings(url=self.broker.url, username=username, password=password)

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def publish_raw(self, topic: str, payloads: list[bytes], qos: int = 1) -> None:
        """Publish payloads on one topic through the real broker."""

        parts = topic.split("/")
        username, password = self.gateway_login(parts[2], parts[3])

        async def send() -> None:
            async with aiomqtt.Client(
                self.broker.host,
                self.broker.port,
                identifier=f"test-{uuid.uuid4().hex[:8]}",
                username=username,
                password=password,
            ) as client:
                for payload in payloads:
                    await client.publish(topic, payload, qos=qos)

        self.call(send())
        self.published.append(topic)

    def publish(self, *batches: ReadingsBatch) -> None:
        """Publish readings batches on their gateways' readings topics."""
        for batch in batches:
            topic = topic_for(batch.tenant, batch.gateway, Channel.READINGS)
            self.publish_raw(topic, [encode(batch)])

    def wait_for(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        """Wait until `condition()` is true, polling the collector's state."""

        async def poll() -> None:
            async with asyncio.timeout(timeout):
                while not condition():
                    await asyncio.sleep(0.02)

        self.call(poll(), timeout + 5)

    def wait_stored(
        self, accepted: int, rejected: int = 0, timeout: float = 15.0
    ) -> None:
        """Wait until the given batches were written and messages rejected."""
        collector = self.centre.collector
        assert collector is not None

        def settled() -> bool:
            stats = collector.stats
            return (
                stats.batches_accepted >= accepted
                and sum(stats.rejected.values()) >= rejected
                and collector.idle()
            )

        self.wait_for(settled, timeout)


def _start(
    settings: ServerSettings, tenant: str
) -> tuple[RunningServer, Callable[[], None]]:
    loop = asyncio.new_event_loop()
    started: Future[DataCentre] = Future()
    stop = asyncio.Event()

    async def main() -> None:
        try:
            async with DataCentre(settings) as centre:
                started.set_result(centre)
                await stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(
        target=loop.run_until_complete, args=(main(),), daemon=True
    )
    thread.start()
    centre = started.result(60)
    # The test tenant's data is public, so tests read it without a key as a
    # newcomer does; everything else takes the platform admin key.
    assert centre.registry is not None
    identities = centre.registry.identities
    identities.create_tenant(tenant, public=True)
    admin_key = identities.api_keys.issue_key(None, list(Scope), name="tests").token

    def shutdown() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()

    return RunningServer(centre, loop, tenant, admin_key), shutdown


def server_settings(
    tmp_path: Path, tenant: str, broker: str = "embedded"
) -> ServerSettings:
    """Return settings for a test data centre on free ports under tmp_path."""
    if broker == "embedded":
        broker_settings = BrokerSettings(mode="embedded", port=0)
    else:
        broker_settings = BrokerSettings(mode="external", url=MOSQUITTO_URL)
    return ServerSettings(
        data_dir=tmp_path / "data",
        broker=broker_settings,
        http=HttpSettings(port=0),
        collector=CollectorSettings(
            client_id=f"collector-{tenant}", tenant=tenant, batch_max_delay_ms=20
        ),
    )


async def _forget_session(
    address: BrokerAddress, client_id: str, topics: list[str]
) -> None:
    """Drop a persistent session and clear retained messages left on a shared broker."""
    async with aiomqtt.Client(
        address.host, address.port, identifier=client_id, clean_session=True
    ) as client:
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)


@pytest.fixture
def server(tmp_path: Path, tenant: str) -> Iterator[RunningServer]:
    """A data centre with the embedded broker, on free ports."""
    running, shutdown = _start(server_settings(tmp_path, tenant), tenant)
    yield running
    shutdown()


@pytest.fixture
def mosquitto_server(tmp_path: Path, tenant: str) -> Iterator[RunningServer]:
    """A data centre whose collector uses the Mosquitto on 127.0.0.1:1883."""
    settings = server_settings(tmp_path, tenant, broker="external")
    running, shutdown = _start(settings, tenant)
    yield running
    shutdown()
    retained = [
        f"citymesh/v1/{tenant}/{gw}/{channel}"
        for gw in {t.split("/")[3] for t in running.published if t.count("/") == 4}
        for channel in ("birth", "status", "death")
    ]
    address = settings.broker.external_address()
    asyncio.run(_forget_session(address, settings.collector.client_id, retained))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of its own for this test run, dropped at its end."""
    import psycopg

    name = f"citymesh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
