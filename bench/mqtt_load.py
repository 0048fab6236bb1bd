"""W4: gateways publish readings batches through Mosquitto to a citymesh collector.

Two measurements on one server: the throughput until every reading is stored
(the collector's `points_stored`, then counted back through /render), and the
reading-to-dashboard-push latency at the city load, read from /api/v1/stream.
One MQTT connection publishes for all gateways, each on its own topic with its
own sequence numbers, because the collector treats them alike either way.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.citymesh_server import MOSQUITTO_HOST, MOSQUITTO_PORT, CitymeshServer
from bench.fleet import STEP_S, SeriesId, fleet, values
from bench.procs import BenchError
from citymesh.protocol.messages import (
    PROTOCOL_VERSION,
    ReadingsBatch,
    SeriesPoints,
    encode,
)
from citymesh.protocol.topics import Channel, topic_for

logger = logging.getLogger(__name__)

# Messages published but not yet received by the collector. Mosquitto queues
# at most 1000 messages (max_queued_messages) for a client by default and
# drops QoS 1 messages beyond it, so the publisher stays well below.
MAX_OUTSTANDING = 400
# Pause between polls of the collector's counters; each poll is an HTTP
# request the server serves, so polling faster would take CPU from the work.
POLL_INTERVAL_S = 0.05
PUBLISHER_ID = "citymesh-bench-publisher"
COUNT_BACK_TRIES = 5


@dataclass(frozen=True, slots=True)
class ThroughputResult:
    """Readings stored per second, from the first publish until all were stored."""

    readings: int
    messages: int
    seconds: float
    counted_back: int

    @property
    def readings_per_s(self) -> float:
        """Return readings per second."""
        return self.readings / self.seconds


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Push latencies of the readings seen on the event stream, in ms."""

    published: int
    pushed: int
    latencies_ms: list[float]

    def percentile(self, q: float) -> float:
        """Return the q-th percentile latency."""
        return float(np.percentile(self.latencies_ms, q))


def _batch(
    tenant: str,
    gateway: str,
    site: str,
    seq: int,
    members: list[SeriesId],
    columns: dict[SeriesId, tuple[list[int], list[float]]],
) -> bytes:
    series = [
        SeriesPoints(
            device=item.node_id,
            quantity=item.quantity,
            points=list(zip(*columns[item], strict=True)),
        )
        for item in members
    ]
    message = ReadingsBatch(
        v=PROTOCOL_VERSION,
        tenant=tenant,
        gateway=gateway,
        site=site,
        seq=seq,
        sent_ms=time.time_ns() // 1_000_000,
        series=series,
    )
    return encode(message)


def build_history(
    tenant: str, gateways: int, messages_per_gateway: int, points_per_series: int
) -> tuple[list[tuple[str, bytes]], int]:
    """Encode readings batches of past minutes, round-robin over the gateways."""
    members = fleet(gateways)
    by_gateway: dict[int, list[SeriesId]] = {}
    for item in members:
        by_gateway.setdefault(item.gateway, []).append(item)
    total_points = messages_per_gateway * points_per_series
    end_s = (int(time.time()) // STEP_S) * STEP_S - 3600
    timestamps = np.arange(end_s - (total_points - 1) * STEP_S, end_s + 1, STEP_S)
    series_values = {item: values(item, timestamps).tolist() for item in members}
    stamps_ms = (timestamps * 1000).tolist()
    out: list[tuple[str, bytes]] = []
    readings = 0
    for index in range(messages_per_gateway):
        lo, hi = index * points_per_series, (index + 1) * points_per_series
        for items in by_gateway.values():
            columns = {
                item: (stamps_ms[lo:hi], series_values[item][lo:hi]) for item in items
            }
            gateway_id = items[0].gateway_id
            payload = _batch(
                tenant, gateway_id, items[0].district_id, index + 1, items, columns
            )
            out.append((topic_for(tenant, gateway_id, Channel.READINGS), payload))
            readings += len(items) * points_per_series
    return out, readings


def _time_span(messages: list[tuple[str, bytes]]) -> tuple[int, int]:
    """Return the first and last reading time of `messages`, in epoch seconds."""
    stamps = [
        point[0]
        for _, payload in messages
        for item in json.loads(payload)["series"]
        for point in item["points"]
    ]
    return min(stamps) // 1000, max(stamps) // 1000


def _publisher() -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=PUBLISHER_ID, clean_session=True
    )
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
    client.loop_start()
    return client


def throughput(
    server: CitymeshServer, messages: list[tuple[str, bytes]], readings: int
) -> ThroughputResult:
    """Publish every message, pacing by the collector's progress; time until stored."""
    client = _publisher()
    try:
        base = server.collector_stats()
        received0 = base["messages_received"]
        stored0 = base["points_stored"]
        started = time.perf_counter()
        received = 0
        for sent, (topic, payload) in enumerate(messages, start=1):
            while sent - received > MAX_OUTSTANDING:
                time.sleep(POLL_INTERVAL_S)
                received = server.collector_stats()["messages_received"] - received0
            client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 600
        while True:
            stats = server.collector_stats()
            if stats["rejected_total"]:
                raise BenchError(f"the collector rejected readings: {stats}")
            if stats["points_stored"] - stored0 >= readings:
                break
            if time.monotonic() > deadline:
                raise BenchError(
                    f"citymesh stored {stats['points_stored'] - stored0} of "
                    f"{readings} readings in 600 s: {stats}"
                )
            time.sleep(POLL_INTERVAL_S)
        seconds = time.perf_counter() - started
    finally:
        client.loop_stop()
        client.disconnect()
    counted = _count_back(server, messages, readings)
    return ThroughputResult(readings, len(messages), seconds, counted)


def _count_back(
    server: CitymeshServer, messages: list[tuple[str, bytes]], readings: int
) -> int:
    """Count the stored readings through /render, repeating a short count.

    The count is repeated up to COUNT_BACK_TRIES times while it is short, and
    each short count is logged, so a store that shows readings late is seen.
    """
    # Only the minutes the readings cover are rendered: a 30-day range made
    # 43,200 buckets for each of the 9,000 series, and the count took longer
    # than storing the readings.
    first_s, last_s = _time_span(messages)
    target = f'sumSeries(summarize({server.mqtt_tenant}.*.*.*.*, "1y", "count"))'
    params = {"target": target, "from": str(first_s - 60), "until": str(last_s + 60)}
    counted = 0
    for attempt in range(1, COUNT_BACK_TRIES + 1):
        body = server.client.get_json("/render", params)
        counted = int(
            sum(p[0] for s in body for p in s["datapoints"] if p[0] is not None)
        )
        if counted == readings:
            break
        logger.warning(
            "count back %d of %d: %d of %d readings",
            attempt,
            COUNT_BACK_TRIES,
            counted,
            readings,
        )
        time.sleep(1.0)
    return counted


class _StreamReader(threading.Thread):
    """Reads /api/v1/stream and records each `points` event with its arrival time."""

    def __init__(self, port: int, api_key: str | None) -> None:
        super().__init__(name="sse-reader", daemon=True)
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"X-API-Key": api_key} if api_key else {}
        self._conn.request("GET", "/api/v1/stream", headers=headers)
        self._response = self._conn.getresponse()
        if self._response.status != 200:
            raise BenchError(f"/api/v1/stream returned {self._response.status}")
        self.events: list[tuple[float, bytes]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                line = self._response.fp.readline()
            except (OSError, ValueError):
                return
            if not line:
                return
            if line.startswith(b"data: "):
                self.events.append((time.time(), line[6:]))

    def close(self) -> None:
        self.stop.set()
        self._conn.close()


def latency(
    server: CitymeshServer,
    gateways: int,
    period_s: float,
    duration_s: float,
    first_seq: int,
) -> LatencyResult:
    """Publish one reading per series of each gateway every period, spread evenly."""
    members = fleet(gateways)
    by_gateway: dict[int, list[SeriesId]] = {}
    for item in members:
        by_gateway.setdefault(item.gateway, []).append(item)
    reader = _StreamReader(server.http_port, server.api_key)
    reader.start()
    client = _publisher()
    published: dict[tuple[str, int], float] = {}
    tenant = server.mqtt_tenant
    try:
        rng = np.random.default_rng(7)
        started = time.time()
        rounds = int(duration_s / period_s)
        slot = period_s / len(by_gateway)
        for round_index in range(rounds):
            for position, items in enumerate(by_gateway.values()):
                due = started + round_index * period_s + position * slot
                wait = due - time.time()
                if wait > 0:
                    time.sleep(wait)
                now_ms = time.time_ns() // 1_000_000
                columns = {
                    item: ([now_ms], [round(float(rng.normal(20, 2)), 2)])
                    for item in items
                }
                gateway_id = items[0].gateway_id
                payload = _batch(
                    tenant,
                    gateway_id,
                    items[0].district_id,
                    first_seq + round_index,
                    items,
                    columns,
                )
                client.publish(
                    topic_for(tenant, gateway_id, Channel.READINGS), payload, qos=1
                )
                for item in items:
                    published[(item.name(tenant), now_ms)] = now_ms / 1000
        time.sleep(2.0)
    finally:
        client.loop_stop()
        client.disconnect()
        reader.close()
    latencies = []
    for arrived, data in reader.events:
        for point in json.loads(data).get("points", []):
            sent = published.pop((point["series"], point["timestamp"]), None)
            if sent is not None:
                latencies.append((arrived - sent) * 1000)
    if not latencies:
        raise BenchError("no published reading came back on /api/v1/stream")
    return LatencyResult(len(latencies) + len(published), len(latencies), latencies)
