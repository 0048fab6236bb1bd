"""A gateway whose client certificate the broker rejects stops and names the fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from citymesh.gateway.agent import GatewayAgent
from citymesh.gateway.runner import open_buffer
from citymesh.gateway.settings import GatewaySettings, MqttSettings
from citymesh.gateway.sources import RecordedReading
from citymesh.transport.connect import CredentialsRejected
from citymesh.transport.tls import certificate_rejection
from tests.security.test_tls import TlsMosquitto, tls_mosquitto  # noqa: F401

pytestmark = pytest.mark.mosquitto


async def _no_readings() -> AsyncIterator[Sequence[RecordedReading]]:
    await asyncio.Event().wait()
    yield []


def _revoke(broker: TlsMosquitto) -> None:
    broker.registry.identities.revoke_gateway("acme", "gw-1")
    assert broker.sync.sync()
    time.sleep(0.5)  # Mosquitto reloads on SIGHUP asynchronously.


def test_probe_names_revoked_certificate(
    tls_mosquitto: TlsMosquitto,  # noqa: F811
) -> None:
    broker = tls_mosquitto
    port = broker.tls.mtls_port
    assert port is not None
    context = broker.context(broker.gateways["acme"])

    before = certificate_rejection("127.0.0.1", port, context, timeout_s=1.0)
    _revoke(broker)
    after = certificate_rejection("127.0.0.1", port, context, timeout_s=1.0)

    assert before is None
    assert after is not None and "revoked" in after


def test_gateway_with_revoked_certificate_stops_retrying(
    tls_mosquitto: TlsMosquitto,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = tls_mosquitto
    acme = broker.gateways["acme"]
    settings = GatewaySettings(
        tenant="acme",
        gateway="gw-1",
        data_dir=tmp_path / "gw",
        mqtt=MqttSettings(
            url=f"mqtts://127.0.0.1:{broker.tls.mtls_port}",
            ca_file=broker.server.cafile,
            certfile=acme.certfile,
            keyfile=acme.keyfile,
            connect_timeout_s=2,
            reconnect_max_s=0.2,
        ),
    )
    _revoke(broker)
    agent = GatewayAgent(settings, [], open_buffer(settings))

    with pytest.raises(CredentialsRejected) as caught:
        asyncio.run(asyncio.wait_for(agent.run(_no_readings(), asyncio.Event()), 30))

    assert "revoked" in str(caught.value)
    assert str(acme.certfile) in str(caught.value)
    assert agent.reconnects == 0
    assert "citymesh gateway enroll" in caplog.text
