"""MQTT over TLS with the platform CA, on a real Mosquitto and the embedded broker."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from typer.testing import CliRunner

from citymesh.cli import app
from citymesh.config import load_settings
from citymesh.gateway import settings as gateway_settings_module
from citymesh.gateway.runner import run_gateway
from citymesh.gateway.settings import CLIENT_CERT_FILE, GatewaySettings
from citymesh.protocol.messages import encode
from citymesh.registry.identities import GatewayCredentials
from citymesh.registry.mosquitto import MosquittoSync, MosquittoTls, render_tls_config
from citymesh.registry.pki import CertificateAuthority, TlsFiles
from citymesh.registry.store import Registry
from citymesh.transport.ports import free_port, port_in_use
from citymesh.transport.tls import client_context, make_client_key
from tests.conftest import RunningServer, _start, server_settings
from tests.security.fleet import batch

SERVICE = ("citymesh-collector", "service-secret-1")


@dataclass
class GatewayTls:
    """A gateway's password login and, with mutual TLS, its certificate files."""

    login: GatewayCredentials
    certfile: Path | None = None
    keyfile: Path | None = None


def issue_client_files(
    registry: Registry, ca: CertificateAuthority, tenant: str, gateway: str, to: Path
) -> tuple[Path, Path]:
    """Make a gateway key and CSR, have the CA sign it and record the serial."""
    key_pem, csr_pem = make_client_key(tenant, gateway)
    issued = ca.sign_client(csr_pem.decode(), tenant, gateway)
    registry.identities.certificates.record(
        tenant, gateway, issued.serial, issued.not_after_ms
    )
    to.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = to / f"{gateway}.pem", to / f"{gateway}.key"
    certfile.write_text(issued.pem)
    keyfile.write_bytes(key_pem)
    return certfile, keyfile


@dataclass
class TlsMosquitto:
    """A Mosquitto of one test with password, TLS and mutual TLS listeners."""

    process: subprocess.Popen[str]
    registry: Registry
    sync: MosquittoSync
    server: TlsFiles
    tls: MosquittoTls
    gateways: dict[str, GatewayTls]

    def context(self, gateway: GatewayTls | None = None) -> ssl.SSLContext:
        """Return a client TLS context trusting the CA, with the gateway's cert."""
        if gateway is None:
            return client_context(self.server.cafile)
        return client_context(self.server.cafile, gateway.certfile, gateway.keyfile)


@pytest.fixture
def tls_mosquitto(tmp_path: Path) -> Iterator[TlsMosquitto]:
    """Start Mosquitto with generated TLS listeners; acme requires mutual TLS."""
    registry = Registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    identities = registry.identities
    identities.create_tenant("acme")
    identities.create_tenant("bolt")
    identities.certificates.set_require_mtls("acme", True)
    ca = CertificateAuthority.load_or_create(tmp_path)
    server = ca.issue_server(["127.0.0.1", "localhost"])
    gateways = {
        "acme": GatewayTls(identities.enrol("acme", "gw-1")),
        "bolt": GatewayTls(identities.enrol("bolt", "gw-1")),
    }
    certfile, keyfile = issue_client_files(
        registry, ca, "acme", "gw-1", tmp_path / "acme"
    )
    gateways["acme"].certfile, gateways["acme"].keyfile = certfile, keyfile

    directory = tmp_path / "mqtt"
    sync = MosquittoSync(
        identities, directory, dict([SERVICE]), tmp_path / "pid", ca=ca
    )
    sync.sync()

    tls = MosquittoTls(
        server.cafile,
        server.certfile,
        server.keyfile,
        port=free_port(),
        mtls_port=free_port(),
        crl_file=directory / "citymesh.crl",
    )
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        # Started as root, Mosquitto switches to its own user, who cannot read
        # the private files this test writes, unless `user root` keeps it root.
        "user root\n"
        f"password_file {directory / 'citymesh.passwd'}\n"
        f"acl_file {directory / 'citymesh.acl'}\n"
        "persistence false\n" + render_tls_config(tls)
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    (tmp_path / "pid").write_text(str(process.pid))

    deadline = time.monotonic() + 10
    assert tls.mtls_port is not None
    while not port_in_use("127.0.0.1", tls.mtls_port):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "Mosquitto did not start"
        time.sleep(0.05)
    yield TlsMosquitto(process, registry, sync, server, tls, gateways)
    process.terminate()
    process.communicate(timeout=10)
    registry.close()


def _client(
    port: int,
    context: ssl.SSLContext | None,
    login: tuple[str, str] | None = None,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=f"t-{uuid.uuid4().hex[:6]}",
        username=None if login is None else login[0],
        password=None if login is None else login[1],
        tls_context=context,
        timeout=5,
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


def _connects(
    port: int, context: ssl.SSLContext, login: tuple[str, str] | None
) -> bool:
    async def attempt() -> None:
        async with _client(port, context, login):
            pass

    try:
        asyncio.run(attempt())
    except aiomqtt.MqttError:
        return False
    return True


@pytest.mark.mosquitto
def test_mosquitto_client_certificate_publishes_within_acl(
    tls_mosquitto: TlsMosquitto,
) -> None:
    broker = tls_mosquitto
    acme = broker.gateways["acme"]
    assert broker.tls.mtls_port is not None

    async def exchange() -> list[str]:
        async with (
            _client(broker.tls.port, broker.context(), SERVICE) as service,
            _client(broker.tls.mtls_port, broker.context(acme)) as gateway,  # type: ignore[arg-type]
        ):
            await service.subscribe("citymesh/v1/#", qos=1)
            await gateway.publish("citymesh/v1/bolt/gw-1/readings", b"forged", qos=1)
            await gateway.publish("citymesh/v1/acme/gw-1/readings", b"own", qos=1)
            return await _drain(service, 1.0)

    at_service = asyncio.run(exchange())

    assert at_service == ["citymesh/v1/acme/gw-1/readings own"]


@pytest.mark.mosquitto
def test_mosquitto_mtls_rejects_client_without_certificate(
    tls_mosquitto: TlsMosquitto,
) -> None:
    broker = tls_mosquitto
    acme = broker.gateways["acme"].login
    bolt = broker.gateways["bolt"].login
    assert broker.tls.mtls_port is not None

    without_cert = _connects(
        broker.tls.mtls_port, broker.context(), (acme.username, acme.password)
    )
    acme_password_over_tls = _connects(
        broker.tls.port, broker.context(), (acme.username, acme.password)
    )
    bolt_password_over_tls = _connects(
        broker.tls.port, broker.context(), (bolt.username, bolt.password)
    )

    assert not without_cert
    assert not acme_password_over_tls
    assert bolt_password_over_tls


@pytest.mark.mosquitto
def test_mosquitto_revoked_certificate_rejected_after_sync(
    tls_mosquitto: TlsMosquitto,
) -> None:
    broker = tls_mosquitto
    acme = broker.gateways["acme"]
    assert broker.tls.mtls_port is not None
    assert _connects(broker.tls.mtls_port, broker.context(acme), None)

    broker.registry.identities.revoke_gateway("acme", "gw-1")
    changed = broker.sync.sync()
    time.sleep(0.5)  # Mosquitto reloads on SIGHUP asynchronously.

    assert changed
    assert not _connects(broker.tls.mtls_port, broker.context(acme), None)
    assert broker.process.poll() is None


@pytest.fixture
def tls_server(tmp_path: Path, tenant: str) -> Iterator[RunningServer]:
    """A data centre whose embedded broker also listens for TLS; its tenant
    requires mutual TLS."""
    settings = server_settings(tmp_path, tenant)
    broker = settings.broker.model_copy(update={"tls": True, "tls_port": 0})
    running, shutdown = _start(settings.model_copy(update={"broker": broker}), tenant)
    running.identities.certificates.set_require_mtls(tenant, True)
    yield running
    shutdown()


def _tls_url(server: RunningServer) -> str:
    address = server.centre.broker_tls_address
    assert address is not None
    return address.url


def _enrol_gateway(server: RunningServer, gateway: str, tmp_path: Path) -> Path:
    """Enrol a gateway with `citymesh gateway enroll`; return its settings file."""
    token = server.identities.add_gateway(server.tenant, gateway)
    config = tmp_path / f"{gateway}.toml"
    config.write_text(
        f'tenant = "{server.tenant}"\nsite = "melbourne"\ngateway = "{gateway}"\n'
        f'data_dir = "{tmp_path / gateway}"\n'
        f'[mqtt]\nurl = "{_tls_url(server)}"\n'
        '[replay]\nsources = ["pedestrian"]\nspeed = 0\ntimestamps = "recorded"\n'
        "loop = false\nlimit = 60\n"
    )
    arguments = ["gateway", "enroll", "--token", token, "--api", server.http_url]
    result = CliRunner().invoke(app, [*arguments, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return config


def _gateway_settings(config: Path) -> GatewaySettings:
    return load_settings(
        GatewaySettings, config, gateway_settings_module.ENV_PREFIX, environ={}
    )


def test_embedded_enrolled_certificate_delivers_readings(
    tls_server: RunningServer, tmp_path: Path
) -> None:
    server = tls_server
    config = _enrol_gateway(server, "gw-7", tmp_path)
    settings = _gateway_settings(config)
    assert server.centre.collector is not None
    stats = server.centre.collector.stats

    agent = asyncio.run(
        asyncio.wait_for(run_gateway(settings, asyncio.Event(), True), 60)
    )

    assert settings.mqtt.certfile == tmp_path / "gw-7" / CLIENT_CERT_FILE
    assert agent.readings_sent == 60
    server.wait_for(lambda: stats.points_stored >= 60)


def test_embedded_mtls_rejects_password_and_revoked_certificate(
    tls_server: RunningServer, tmp_path: Path
) -> None:
    server = tls_server
    settings = _gateway_settings(_enrol_gateway(server, "gw-8", tmp_path))
    mqtt = settings.mqtt
    assert mqtt.username is not None and mqtt.password is not None
    login = (mqtt.username, mqtt.password)
    tls = server.centre.broker_tls_address
    assert tls is not None
    with_cert = client_context(mqtt.ca_file, mqtt.certfile, mqtt.keyfile)
    without_cert = client_context(mqtt.ca_file)

    assert _connects(tls.port, with_cert, None)
    assert not _connects(tls.port, without_cert, login)
    assert not _connects(server.broker.port, None, login)
    server.identities.revoke_gateway(server.tenant, "gw-8")
    assert not _connects(tls.port, with_cert, None)


def test_embedded_certificate_confined_to_own_topics(
    tls_server: RunningServer, tmp_path: Path
) -> None:
    server = tls_server
    settings = _gateway_settings(_enrol_gateway(server, "gw-1", tmp_path))
    mqtt = settings.mqtt
    tls = server.centre.broker_tls_address
    assert tls is not None and server.centre.broker_authority is not None
    server.centre.broker_authority.add_service(*SERVICE)
    context = client_context(mqtt.ca_file, mqtt.certfile, mqtt.keyfile)
    own_topic = f"citymesh/v1/{server.tenant}/gw-1/readings"

    async def exchange() -> list[str]:
        async with (
            _client(server.broker.port, None, SERVICE) as service,
            _client(tls.port, context) as gateway,
        ):
            await service.subscribe("citymesh/v1/#", qos=1)
            await gateway.publish("citymesh/v1/bolt/gw-1/readings", b"forged", 1)
            await gateway.publish(f"citymesh/v1/{server.tenant}/gw-2/status", b"x", 1)
            await gateway.publish(own_topic, b"own", 1)
            return await _drain(service, 1.0)

    at_service = asyncio.run(exchange())

    assert at_service == [f"{own_topic} own"]


@pytest.mark.mosquitto
def test_collector_reads_external_broker_over_tls(
    tls_mosquitto: TlsMosquitto, tmp_path: Path
) -> None:
    broker = tls_mosquitto
    bolt = broker.gateways["bolt"].login
    settings = server_settings(tmp_path / "dc", "bolt", broker="external")
    external = settings.broker.model_copy(
        update={
            "url": f"mqtts://127.0.0.1:{broker.tls.port}",
            "ca_file": broker.server.cafile,
            "username": SERVICE[0],
            "password": SERVICE[1],
        }
    )
    settings = settings.model_copy(
        update={
            "broker": external,
            "registry_url": f"sqlite:///{tmp_path / 'registry.sqlite'}",
        }
    )
    running, shutdown = _start(settings, "bolt")
    try:
        assert running.centre.collector is not None
        stats = running.centre.collector.stats

        async def publish() -> None:
            login = (bolt.username, bolt.password)
            async with _client(broker.tls.port, broker.context(), login) as client:
                payload = encode(batch("bolt", 1, 21.5))
                await client.publish("citymesh/v1/bolt/gw-1/readings", payload, 1)

        asyncio.run(publish())
        running.wait_for(lambda: stats.points_stored >= 2)
    finally:
        shutdown()

    assert running.broker.tls
    assert stats.points_stored == 2
