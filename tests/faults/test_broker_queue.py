"""Mosquitto's queue limit for a slow subscriber: default settings against ours."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.faults.harness import Mosquitto

pytestmark = pytest.mark.mosquitto

MESSAGES = 3000
TOPIC = "citymesh/v1/queue-test/gw-1/readings"


class _SlowSubscriber:
    """A persistent-session subscriber that withholds its PUBACKs until told."""

    def __init__(self, port: int) -> None:
        self.received: set[bytes] = set()
        self.unacked: list[tuple[int, int]] = []
        self.acking = False
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"slow-{uuid.uuid4().hex[:8]}",
            clean_session=False,
            manual_ack=True,
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(TOPIC, qos=1)
        self.client.loop_start()

    def _on_message(
        self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        with self._lock:
            self.received.add(bytes(message.payload))
            if self.acking:
                client.ack(message.mid, message.qos)
            else:
                self.unacked.append((message.mid, message.qos))

    def catch_up(self) -> None:
        """Acknowledge everything held back, and every later message at once."""
        with self._lock:
            self.acking = True
            for mid, qos in self.unacked:
                self.client.ack(mid, qos)
            self.unacked.clear()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def _publish_all(port: int) -> None:
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="publisher")
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    try:
        infos = [
            publisher.publish(TOPIC, f"{n}".encode(), qos=1) for n in range(MESSAGES)
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        publisher.disconnect()
        publisher.loop_stop()


def _delivered_to_slow_subscriber(broker: Mosquitto) -> int:
    with broker:
        subscriber = _SlowSubscriber(broker.port)
        try:
            time.sleep(0.3)
            # Every message gets its PUBACK from the broker, as a gateway's would.
            _publish_all(broker.port)
            subscriber.catch_up()
            # Delivery is complete once the count stops growing for a second.
            seen = -1
            while len(subscriber.received) != seen:
                seen = len(subscriber.received)
                time.sleep(1.0)
            return len(subscriber.received)
        finally:
            subscriber.close()


def test_default_queue_limit_drops_qos1(tmp_path: Path) -> None:
    delivered = _delivered_to_slow_subscriber(
        Mosquitto(tmp_path / "default", shipped=False)
    )
    # max_queued_messages 1000 on top of max_inflight_messages 20.
    assert delivered == 1020


def test_shipped_config_keeps_every_qos1(tmp_path: Path) -> None:
    delivered = _delivered_to_slow_subscriber(Mosquitto(tmp_path / "shipped"))
    assert delivered == MESSAGES
