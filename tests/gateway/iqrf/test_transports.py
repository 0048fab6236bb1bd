"""Opening the IQRF daemon's MQTT transport, with and without TLS."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from iqrfpy.peripherals.coordinator.requests import AddrInfoRequest
from iqrfpy.peripherals.coordinator.responses import AddrInfoResponse
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

from citymesh.errors import TransportError
from citymesh.gateway.iqrf.settings import DaemonSettings, IqrfSettings
from citymesh.gateway.iqrf.transports import DaemonTransport, open_transport
from tests.gateway.iqrf.conftest import DAEMON_EXAMPLES

pytestmark = pytest.mark.mosquitto


# paho-mqtt 2.2.0 leaves the TLS socket of a failed handshake unclosed.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_open_transport_tls_to_plain_broker_fails() -> None:
    # Mosquitto on 1883 speaks plain MQTT, so the TLS handshake must fail.
    settings = IqrfSettings(
        transport="daemon",
        daemon=DaemonSettings(host="127.0.0.1", port=1883, tls=True),
        request_timeout_s=2.0,
    )
    with pytest.raises(TransportError, match=r"127\.0\.0\.1:1883"):
        open_transport(settings)


def test_open_transport_plain_connects() -> None:
    settings = IqrfSettings(
        transport="daemon",
        daemon=DaemonSettings(host="127.0.0.1", port=1883),
        request_timeout_s=2.0,
    )
    transport = open_transport(settings)
    try:
        assert isinstance(transport, DaemonTransport)
        assert transport.is_connected()
    finally:
        transport.terminate()


@pytest.fixture
def fake_daemon() -> Iterator[tuple[str, str]]:
    """Reply to AddrInfo requests on Mosquitto with the daemon's recorded response."""
    prefix = f"citymesh-test/{uuid.uuid4().hex[:8]}"
    request_topic, response_topic = f"{prefix}/request", f"{prefix}/response"
    example = (
        DAEMON_EXAMPLES / "iqrfEmbedCoordinator_AddrInfo-response-1-0-0-example.json"
    )
    recorded = json.loads(example.read_text())
    subscribed = threading.Event()
    client = Client(callback_api_version=CallbackAPIVersion.VERSION2)

    def on_message(client: Client, userdata: object, message: MQTTMessage) -> None:
        request = json.loads(message.payload)
        response = json.loads(json.dumps(recorded))
        response["data"]["msgId"] = request["data"]["msgId"]
        client.publish(response_topic, json.dumps(response), qos=1)

    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", 1883)
    client.subscribe(request_topic, qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        yield request_topic, response_topic
    finally:
        client.disconnect()
        client.loop_stop()


def test_daemon_transport_exchanges_json(fake_daemon: tuple[str, str]) -> None:
    request_topic, response_topic = fake_daemon
    settings = IqrfSettings(
        transport="daemon",
        daemon=DaemonSettings(
            port=1883, request_topic=request_topic, response_topic=response_topic
        ),
        request_timeout_s=5.0,
    )
    transport = open_transport(settings)
    try:
        response = transport.send_and_receive(AddrInfoRequest(), timeout=5.0)
    finally:
        transport.terminate()
    assert isinstance(response, AddrInfoResponse)
    assert response.dev_nr == 0
    assert response.did == 42
