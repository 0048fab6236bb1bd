"""A real Mosquitto with the generated password and ACL files enforces tenancy."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from citymesh.registry.mosquitto import MosquittoSync
from citymesh.registry.store import Registry
from citymesh.transport.ports import free_port, port_in_use

pytestmark = pytest.mark.mosquitto

SERVICE = ("citymesh-collector", "service-secret-1")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[tuple[int, Registry, MosquittoSync]]:
    """A Mosquitto of this test on a free port, fed by a fresh registry."""
    registry = Registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    registry.identities.create_tenant("acme")
    registry.identities.create_tenant("bolt")
    sync = MosquittoSync(
        registry.identities, tmp_path / "mqtt", dict([SERVICE]), tmp_path / "pid"
    )
    port = free_port()
    registry_logins = {
        tenant: registry.identities.enrol(tenant, "gw-1") for tenant in ("acme", "bolt")
    }
    sync.sync()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        # Started as root, Mosquitto would switch to its own user, who cannot
        # read the private files this test writes; as another user it stays.
        "user root\n"
        f"password_file {tmp_path / 'mqtt' / 'citymesh.passwd'}\n"
        f"acl_file {tmp_path / 'mqtt' / 'citymesh.acl'}\n"
        "persistence false\n"
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    (tmp_path / "pid").write_text(str(process.pid))
    deadline = time.monotonic() + 10
    while not port_in_use("127.0.0.1", port):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "Mosquitto did not start"
        time.sleep(0.05)
    sync.logins = registry_logins  # type: ignore[attr-defined]
    yield port, registry, sync
    process.terminate()
    process.communicate(timeout=10)
    registry.close()


def _client(port: int, login: tuple[str, str]) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=f"m-{uuid.uuid4().hex[:6]}",
        username=login[0],
        password=login[1],
    )


async def _drain(client: aiomqtt.Client, seconds: float) -> list[str]:
    received: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received.append(f"{message.topic.value} {message.payload.decode()}")
    except TimeoutError:
        pass
    return received


async def _exchange(port: int, acme: tuple[str, str]) -> tuple[list[str], list[str]]:
    async with _client(port, SERVICE) as service, _client(port, acme) as gateway:
        await service.subscribe("citymesh/v1/#", qos=1)
        await gateway.subscribe("citymesh/v1/acme/gw-1/commands", qos=1)
        # Mosquitto 2.0 grants an MQTT 3.1.1 subscription its ACL forbids and
        # then delivers nothing on it, so the test checks the deliveries.
        await gateway.subscribe("citymesh/v1/bolt/gw-1/commands", qos=1)
        await gateway.publish("citymesh/v1/bolt/gw-1/readings", b"forged", qos=1)
        await gateway.publish("citymesh/v1/acme/gw-1/commands", b"forged", qos=1)
        await gateway.publish("citymesh/v1/acme/gw-1/readings", b"own", qos=1)
        await service.publish("citymesh/v1/bolt/gw-1/commands", b"theirs", qos=1)
        await service.publish("citymesh/v1/acme/gw-1/commands", b"mine", qos=1)
        at_gateway = await _drain(gateway, 1.5)
        at_service = await _drain(service, 0.5)
    return at_service, at_gateway


def test_mosquitto_refuses_forged_publish_and_subscribe(
    mosquitto: tuple[int, Registry, MosquittoSync],
) -> None:
    port, _, sync = mosquitto
    login = sync.logins["acme"]  # type: ignore[attr-defined]

    at_service, at_gateway = asyncio.run(
        _exchange(port, (login.username, login.password))
    )

    assert "citymesh/v1/acme/gw-1/readings own" in at_service
    assert not [m for m in at_service if m.endswith("forged")]
    assert at_gateway == ["citymesh/v1/acme/gw-1/commands mine"]


def test_mosquitto_revoked_gateway_refused_after_sync(
    mosquitto: tuple[int, Registry, MosquittoSync],
) -> None:
    port, registry, sync = mosquitto
    login = sync.logins["bolt"]  # type: ignore[attr-defined]
    credentials = (login.username, login.password)

    async def connect() -> None:
        async with _client(port, credentials):
            pass

    asyncio.run(connect())
    registry.identities.revoke_gateway("bolt", "gw-1")
    assert sync.sync()
    time.sleep(0.5)  # Mosquitto reloads its files on SIGHUP asynchronously.

    with pytest.raises(aiomqtt.MqttCodeError):
        asyncio.run(connect())
