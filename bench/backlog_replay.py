"""Backlog replay after a one-hour outage: readings/s and the gateway agent's RSS.

A gateway of 10 nodes x 3 quantities sampling every second buffers one hour
(108,000 readings) while its broker is unreachable. Then a Mosquitto with
citymesh's configuration starts, and the agent replays the backlog with no
replay rate limit. A subscriber in another process counts what arrives.

    python -m bench.backlog_replay [--nodes 10] [--quantities 3] [--hours 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import paho.mqtt.client as mqtt

from citymesh.gateway.agent import GatewayAgent
from citymesh.gateway.runner import open_buffer
from citymesh.gateway.settings import (
    BufferSettings,
    GatewaySettings,
    MqttSettings,
    PublishSettings,
)
from citymesh.gateway.sources import RecordedReading
from citymesh.protocol.topics import Channel, topic_for

QUANTITIES = ("temperature", "humidity", "co2")
START_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _subscribe(port: int, topic: str, expected: int, pipe: Connection) -> None:
    """Count readings arriving on `topic` until `expected` came, then report."""
    import json

    received = 0
    done = multiprocessing.Event()

    def on_message(
        client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage
    ) -> None:
        nonlocal received
        body = json.loads(msg.payload)
        received += sum(len(s["points"]) for s in body["series"])
        if received >= expected:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    pipe.send("subscribed")
    done.wait(600)
    client.loop_stop()
    pipe.send(received)


async def _idle() -> AsyncIterator[Sequence[RecordedReading]]:
    await asyncio.Event().wait()
    yield []


def _fill(settings: GatewaySettings, nodes: int, seconds: int) -> int:
    buffer = open_buffer(settings)
    for second in range(seconds):
        ts = START_MS + second * 1000
        buffer.append(
            [
                RecordedReading(f"node-{n}", q, ts, 20.0 + n + second % 7)
                for n in range(nodes)
                for q in QUANTITIES
            ]
        )
    count = buffer.count
    buffer.close()
    return count


def _replay_process(settings_json: str, pipe: Connection) -> None:
    """Replay in a fresh process, so its RSS is the agent's alone."""
    settings = GatewaySettings.model_validate_json(settings_json)
    pipe.send(asyncio.run(_replay(settings)))


async def _replay(settings: GatewaySettings) -> tuple[float, float]:
    agent = GatewayAgent(settings, [], open_buffer(settings))
    stop = asyncio.Event()
    peak = _rss_mb()
    task = asyncio.create_task(agent.run(_idle(), stop))
    await agent.connected.wait()
    started = time.perf_counter()
    while agent.buffer.count > 0:
        peak = max(peak, _rss_mb())
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return elapsed, peak


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    seconds = int(args.hours * 3600)
    # Imported here: the harness loads DuckDB, which the agent's process must not.
    from tests.faults.harness import Mosquitto

    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        broker = Mosquitto(directory / "broker")
        settings = GatewaySettings(
            tenant="bench",
            gateway="gw-1",
            data_dir=directory / "gw",
            mqtt=MqttSettings(url=broker.url),
            publish=PublishSettings(
                batch_max_points=args.batch,
                max_inflight=args.inflight,
                replay_max_readings_per_s=0,
            ),
            buffer=BufferSettings(max_bytes=1 << 30),
        )
        filled_at = time.perf_counter()
        readings = _fill(settings, args.nodes, seconds)
        fill_s = time.perf_counter() - filled_at
        size = (directory / "gw" / "gw-1.buffer.sqlite").stat().st_size
        with broker:
            parent, child = multiprocessing.Pipe()
            topic = topic_for("bench", "gw-1", Channel.READINGS)
            subscriber = multiprocessing.Process(
                target=_subscribe, args=(broker.port, topic, readings, child)
            )
            subscriber.start()
            assert parent.recv() == "subscribed"
            replay_end, agent_end = spawn.Pipe()
            agent = spawn.Process(
                target=_replay_process,
                args=(settings.model_dump_json(), agent_end),
            )
            agent.start()
            elapsed, peak = replay_end.recv()
            agent.join(30)
            received = parent.recv()
            subscriber.join(10)
    print(f"python {sys.version.split()[0]}, {multiprocessing.cpu_count()} cores")
    print(f"buffered readings:       {readings:,} ({size / readings:.1f} bytes each)")
    print(f"buffering (1 commit/s of readings): {fill_s:.2f} s")
    print(
        f"replay until acknowledged: {elapsed:.2f} s = "
        f"{readings / elapsed:,.0f} readings/s"
    )
    print(f"received by subscriber:  {received:,}")
    print(f"agent process RSS, peak during replay: {peak:.1f} MB")


if __name__ == "__main__":
    main()
