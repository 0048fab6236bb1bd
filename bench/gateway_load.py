"""W5: RSS and CPU of `citymesh gateway` replaying about 1,000 readings/s.

The replay speed is computed from the recorded data sets so that their
readings, looped, arrive at the target rate. The rate actually published is
measured by subscribing to the gateway's readings topic on Mosquitto.

`python -m bench.gateway_load` prints the startup RSS: the resident memory of
a gateway that opened every data set, connected and has nothing left to send.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import psutil
from paho.mqtt.enums import CallbackAPIVersion

import bench.citymesh_server as citymesh_server
from bench.citymesh_server import (
    MOSQUITTO_HOST,
    MOSQUITTO_PORT,
    SUBPROCESS_ENV,
    citymesh_command,
    clear_mqtt_session,
    server_config,
)
from bench.procs import BenchError, Process
from citymesh.gateway.runner import open_replay_sources
from citymesh.protocol.topics import Channel, topic_for

logger = logging.getLogger(__name__)

SOURCES = ("occupancy", "pedestrian", "traffic")
SAMPLE_INTERVAL_S = 0.5
# How long an idle gateway may take to connect and send its birth message.
STARTUP_TIMEOUT_S = 60.0
# Wait after the birth message before reading the startup RSS, so that the
# one replayed row per source is committed and sent.
STARTUP_SETTLE_S = 2.0


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """Resource use of the gateway process over the measured window."""

    readings_per_s: float
    rss_max_mb: float
    rss_mean_mb: float
    cpu_percent: float
    """CPU time over wall time, in percent of one core."""


def readings_per_recorded_second() -> float:
    """Return the readings per recorded second of all sources played together."""
    total = 0.0
    for name in SOURCES:
        for source in open_replay_sources(name, None):
            count = 0
            first = last = None
            for reading in source.readings():
                count += 1
                first = reading.timestamp_ms if first is None else first
                last = reading.timestamp_ms
            if count and first is not None and last is not None and last > first:
                total += count / ((last - first) / 1000)
    return total


class _Counter:
    """Counts readings published on one gateway's readings topic."""

    def __init__(self, tenant: str, gateway: str) -> None:
        self.readings = 0
        self._lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"citymesh-bench-w5-counter-{os.getpid()}",
            clean_session=True,
        )
        self.client.on_message = self._on_message
        self.client.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
        self.client.subscribe(topic_for(tenant, gateway, Channel.READINGS), qos=0)
        self.client.loop_start()

    def _on_message(
        self, client: paho.Client, userdata: object, message: paho.MQTTMessage
    ) -> None:
        batch = json.loads(message.payload)
        with self._lock:
            self.readings += sum(len(s["points"]) for s in batch["series"])

    def read(self) -> int:
        with self._lock:
            return self.readings

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_gateway(
    workdir: Path, rate: float, warmup_s: float, window_s: float
) -> GatewayResult:
    """Run `citymesh gateway` at about `rate` readings/s and sample it with psutil."""
    tenant = f"bench{os.getpid()}"
    gateway = "w5"
    speed = rate / readings_per_recorded_second()
    replay = {"speed": round(speed, 3), "timestamps": "now", "loop": True}
    config = _write_config(workdir, tenant, gateway, replay)
    counter = _Counter(tenant, gateway)
    process = Process(
        citymesh_command("gateway", "--config", str(config)),
        workdir / "gateway.log",
        env=SUBPROCESS_ENV,
    )
    try:
        time.sleep(warmup_s)
        if process.popen.poll() is not None:
            raise BenchError(f"citymesh gateway exited early:\n{process.tail()}")
        proc = psutil.Process(process.pid)
        cpu0 = proc.cpu_times()
        readings0 = counter.read()
        started = time.monotonic()
        samples = []
        while time.monotonic() - started < window_s:
            samples.append(proc.memory_info().rss)
            time.sleep(SAMPLE_INTERVAL_S)
        cpu1 = proc.cpu_times()
        elapsed = time.monotonic() - started
        readings = counter.read() - readings0
    finally:
        process.stop()
        counter.close()
        _clear_retained(tenant, gateway)
        clear_mqtt_session(f"citymesh-bench-w5-{os.getpid()}")
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return GatewayResult(
        readings_per_s=readings / elapsed,
        rss_max_mb=max(samples) / 2**20,
        rss_mean_mb=sum(samples) / len(samples) / 2**20,
        cpu_percent=100 * cpu / elapsed,
    )


def _write_config(
    workdir: Path, tenant: str, gateway: str, replay: dict[str, object]
) -> Path:
    config = workdir / "gateway.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        server_config(
            {
                "mqtt": {
                    "url": f"mqtt://{MOSQUITTO_HOST}:{MOSQUITTO_PORT}",
                    "client_id": f"citymesh-bench-w5-{os.getpid()}",
                },
                "replay": replay,
            },
            {
                "tenant": tenant,
                "site": "bench",
                "gateway": gateway,
                "data_dir": str(workdir / "gateway-data"),
                "log_level": "WARNING",
            },
        )
    )
    return config


def startup_rss(workdir: Path) -> float:
    """Return the RSS in MiB of an idle `citymesh gateway` once it is connected.

    The gateway opens every data set but replays one row of each, without
    looping, so afterwards it only keeps its connection and status.
    """
    tenant = f"bench{os.getpid()}"
    gateway = "w5"
    replay = {"limit": 1, "timestamps": "recorded", "loop": False}
    config = _write_config(workdir, tenant, gateway, replay)
    born = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, clean_session=True)
    client.on_message = lambda *_: born.set()
    client.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
    client.subscribe(topic_for(tenant, gateway, Channel.BIRTH), qos=1)
    client.loop_start()
    process = Process(
        citymesh_command("gateway", "--config", str(config)),
        workdir / "gateway.log",
        env=SUBPROCESS_ENV,
    )
    try:
        if not born.wait(STARTUP_TIMEOUT_S):
            raise BenchError(
                f"citymesh gateway sent no birth message within "
                f"{STARTUP_TIMEOUT_S:.0f} s:\n{process.tail()}"
            )
        time.sleep(STARTUP_SETTLE_S)
        if process.popen.poll() is not None:
            raise BenchError(f"citymesh gateway exited early:\n{process.tail()}")
        rss = psutil.Process(process.pid).memory_info().rss
    finally:
        process.stop()
        client.loop_stop()
        client.disconnect()
        _clear_retained(tenant, gateway)
        clear_mqtt_session(f"citymesh-bench-w5-{os.getpid()}")
    return rss / 2**20


def _clear_retained(tenant: str, gateway: str) -> None:
    """Remove the retained birth, status and death the gateway left on Mosquitto."""
    client = paho.Client(CallbackAPIVersion.VERSION2, clean_session=True)
    client.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
    client.loop_start()
    for channel in (Channel.BIRTH, Channel.STATUS, Channel.DEATH):
        client.publish(topic_for(tenant, gateway, channel), b"", qos=1, retain=True)
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()


def main() -> None:
    """Print the startup RSS of `citymesh gateway`: the median of --runs runs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    parser.add_argument(
        "--citymesh-src",
        type=Path,
        help="measure this citymesh source tree instead of the installed package",
    )
    args = parser.parse_args()
    if args.citymesh_src is not None:
        citymesh_server.SOURCE_DIR = args.citymesh_src.resolve()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="citymesh-bench-startup-") as tmp:
        figures = [startup_rss(Path(tmp) / f"run{run}") for run in range(args.runs)]
    print(
        f"citymesh gateway startup RSS: median {statistics.median(figures):.1f} MiB "
        f"(min {min(figures):.1f}, max {max(figures):.1f}, {args.runs} runs)"
    )


if __name__ == "__main__":
    main()
