"""The gateway's MQTT link against a Mosquitto that checks passwords."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from citymesh.gateway.agent import GatewayAgent
from citymesh.gateway.runner import open_buffer
from citymesh.gateway.settings import GatewaySettings, MqttSettings
from citymesh.gateway.sources import RecordedReading
from citymesh.transport.connect import CredentialsRejected
from tests.faults.harness import Mosquitto

pytestmark = pytest.mark.mosquitto


async def _no_readings() -> AsyncIterator[Sequence[RecordedReading]]:
    await asyncio.Event().wait()
    yield []


def _agent(tmp_path: Path, url: str, password: str) -> GatewayAgent:
    settings = GatewaySettings(
        tenant="t1",
        gateway="gw-auth",
        data_dir=tmp_path / "gw",
        mqtt=MqttSettings(
            url=url, username="gw-auth", password=password, reconnect_max_s=0.2
        ),
    )
    return GatewayAgent(settings, [], open_buffer(settings))


def test_uplink_rejected_password_stops_retrying(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "gw-auth", "right"],
        check=True,
    )
    with Mosquitto(tmp_path / "broker", password_file=passwords) as broker:
        agent = _agent(tmp_path, broker.url, "wrong")
        started = time.monotonic()
        with pytest.raises(CredentialsRejected) as caught:
            asyncio.run(agent.run(_no_readings(), asyncio.Event()))
        elapsed = time.monotonic() - started
        log = (broker.directory / "mosquitto.log").read_text()
    assert "gw-auth" in str(caught.value)
    assert agent.reconnects == 0
    assert elapsed < 5
    # One refused connection, no retries.
    assert log.count("not authorised") == 1
