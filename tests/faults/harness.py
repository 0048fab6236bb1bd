"""Real processes for fault injection: Mosquitto, a TCP proxy, servers, gateways."""

from __future__ import annotations

import contextlib
import getpass
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from citymesh.gateway.runner import open_replay_sources
from citymesh.protocol.names import series_name
from citymesh.registry.access import Scope
from citymesh.registry.store import Registry
from citymesh.storage.duckdb_store import DuckDBStore
from citymesh.transport.ports import free_port

MOSQUITTO = "/usr/sbin/mosquitto"
SHIPPED_CONFIG = Path(__file__).parents[2] / "deploy" / "mosquitto" / "citymesh.conf"
# Lines of the shipped configuration that name places on a production host.
HOST_KEYS = ("listener", "allow_anonymous", "password_file", "persistence_location")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 50 ms until it holds, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    """Tell whether something accepts TCP connections on 127.0.0.1:`port`."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), 0.2),
    ):
        return True
    return False


class Mosquitto:
    """A Mosquitto process on a free port of 127.0.0.1 that tests stop and start."""

    def __init__(
        self,
        directory: Path,
        shipped: bool = True,
        password_file: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        lines: list[str] = []
        if shipped:
            for line in SHIPPED_CONFIG.read_text().splitlines():
                if not line.startswith(HOST_KEYS):
                    lines.append(line)
            lines.append(f"persistence_location {directory}/")
        lines.append(f"listener {self.port} 127.0.0.1")
        if password_file is None:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        # Started as root, Mosquitto switches to the user "mosquitto", which
        # could not write its log and persistence file into this directory.
        lines.append(f"user {getpass.getuser()}")
        lines += [f"log_dest file {directory}/mosquitto.log", *extra]
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the broker's mqtt:// URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 10, f"mosquitto on {self.port}")

    def stop(self) -> None:
        """Stop the broker cleanly (SIGTERM), which saves its persistence file."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to a target port; can black-hole or reset the link.

    In "pass" mode bytes flow both ways. In "blackhole" mode connections stay
    open but every byte is read and discarded, as on a dead mobile link. In
    "reset" mode every connection is closed with a TCP RST, and new ones too.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def set_mode(self, mode: str) -> None:
        """Switch to "pass", "blackhole" or "reset"."""
        self.mode = mode
        if mode == "reset":
            with self._lock:
                pairs, self._pairs = self._pairs, []
            for pair in pairs:
                for sock in pair:
                    _reset(sock)

    def close(self) -> None:
        """Stop accepting and reset every connection."""
        self._closed = True
        self.set_mode("reset")
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "reset":
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(
                target=self._pump, args=(client, upstream), daemon=True
            ).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if self.mode == "pass":
                        peers[sock].sendall(data)
        except (OSError, ValueError):
            for sock in peers:
                with contextlib.suppress(OSError):
                    sock.close()


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def write_toml(path: Path, settings: dict[str, Any]) -> Path:
    """Write a two-level settings dict as TOML and check it reads back."""
    lines = [
        f"{k} = {_toml_value(v)}"
        for k, v in settings.items()
        if not isinstance(v, dict)
    ]
    for section, values in settings.items():
        if isinstance(values, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())
    return path


def _citymesh(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "citymesh.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


@dataclass
class ServerProcess:
    """A `citymesh server` process whose collector uses an external broker."""

    directory: Path
    broker_url: str
    tenant: str
    gateways: list[str]
    client_id: str = "collector-1"
    share_group: str | None = None
    process: subprocess.Popen[bytes] | None = None
    http_port: int = field(default_factory=free_port)
    admin_key: str = ""

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        collector: dict[str, Any] = {
            "client_id": self.client_id,
            "tenant": self.tenant,
            "batch_max_delay_ms": 20,
            "reconnect_max_s": 1.0,
        }
        if self.share_group is not None:
            collector["share_group"] = self.share_group
        self.config = write_toml(
            self.directory / "server.toml",
            {
                "data_dir": self.directory / "data",
                "log_level": "INFO",
                "broker": {"mode": "external", "url": self.broker_url},
                "http": {"port": self.http_port},
                "collector": collector,
            },
        )
        # Enrol the gateways in the registry before the server opens it.
        (self.directory / "data").mkdir(exist_ok=True)
        registry = Registry(
            f"sqlite:///{(self.directory / 'data' / 'registry.sqlite').resolve()}"
        )
        try:
            identities = registry.identities
            identities.create_tenant(self.tenant, public=True)
            for gateway in self.gateways:
                identities.enrol(self.tenant, gateway)
            self.admin_key = identities.api_keys.issue_key(
                None, list(Scope), name="faults"
            ).token
        finally:
            registry.close()

    @property
    def log(self) -> Path:
        """Return the path of the process's combined output."""
        return self.directory / "server.log"

    def start(self) -> None:
        """Start the server and wait until its API answers."""
        self.process = _citymesh("server", "--config", str(self.config), log=self.log)
        wait_until(self._ready, 30, f"server {self.client_id} to answer")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{self.log.read_text()}")
        try:
            return (
                httpx.get(
                    self._url("/api/v1/collector/stats"),
                    headers=self.headers,
                    timeout=1,
                ).status_code
                == 200
            )
        except httpx.HTTPError:
            return False

    @property
    def headers(self) -> dict[str, str]:
        """Return headers with the admin key."""
        return {"Authorization": f"Bearer {self.admin_key}"}

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def stats(self) -> dict[str, Any]:
        """Return the collector's counters."""
        response = httpx.get(self._url("/api/v1/collector/stats"), headers=self.headers)
        response.raise_for_status()
        return dict(response.json())

    def gateways_api(self) -> list[dict[str, Any]]:
        """Return /api/v1/gateways."""
        response = httpx.get(self._url("/api/v1/gateways"), headers=self.headers)
        response.raise_for_status()
        return list(response.json())

    def signal(self, signum: int) -> None:
        """Send a signal to the server process."""
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """Kill the server with SIGKILL."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        """Stop the server cleanly."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(30)

    def stored(self) -> dict[str, dict[int, float]]:
        """Return every stored point of the tenant by series; stop the server first."""
        store = DuckDBStore(self.directory / "data" / "timeseries.duckdb")
        try:
            names = [
                meta.name
                for meta in store.series()
                if meta.name.startswith(f"{self.tenant}.")
            ]
            return {
                data.series.name: dict(
                    zip(data.timestamps.tolist(), data.values.tolist(), strict=True)
                )
                for data in store.read(names, 0, 2**62)
            }
        finally:
            store.close()


@dataclass
class GatewayProcess:
    """A `citymesh gateway --once` process replaying a known set of readings."""

    directory: Path
    broker_url: str
    tenant: str
    gateway: str
    rows: int
    speed: float
    sources: tuple[str, ...] = ("pedestrian",)
    publish: dict[str, Any] = field(default_factory=dict)
    buffer: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config = write_toml(
            self.directory / "gateway.toml",
            {
                "tenant": self.tenant,
                "site": "lab",
                "gateway": self.gateway,
                "data_dir": self.directory / "state",
                "mqtt": {
                    "url": self.broker_url,
                    "keepalive_s": 5,
                    "connect_timeout_s": 3,
                    "reconnect_max_s": 1.0,
                    "ack_timeout_s": 3,
                },
                "publish": {
                    "batch_max_points": 200,
                    "batch_max_delay_ms": 100,
                    "status_interval_s": 1,
                    **self.publish,
                },
                "buffer": self.buffer,
                "replay": {
                    "sources": list(self.sources),
                    "speed": self.speed,
                    "timestamps": "recorded",
                    "loop": False,
                    "limit": self.rows,
                },
            },
        )

    @property
    def log(self) -> Path:
        """Return the path of the process's combined output."""
        return self.directory / "gateway.log"

    def start(self) -> None:
        """Start the gateway; it exits once every reading was acknowledged."""
        self.process = _citymesh(
            "gateway", "--config", str(self.config), "--once", log=self.log
        )

    def kill(self) -> None:
        """Kill the gateway with SIGKILL."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def wait(self, timeout: float) -> None:
        """Wait for the gateway to exit successfully."""
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            tail = self.log.read_text()[-4000:]
            raise AssertionError(
                f"gateway still running after {timeout:g} s:\n{tail}"
            ) from None
        assert code == 0, self.log.read_text()[-4000:]

    def stop(self) -> None:
        """Kill the gateway if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def expected_readings(
    tenant: str, gateway: str, rows: int
) -> dict[str, dict[int, float]]:
    """Return the points a replay of `rows` pedestrian rows must store, by series."""
    expected: dict[str, dict[int, float]] = {}
    for source in open_replay_sources("pedestrian", rows):
        for r in source.readings():
            name = series_name(tenant, "lab", gateway, r.device, r.quantity)
            expected.setdefault(name, {})[r.timestamp_ms] = r.value
    return expected


def total(points: dict[str, dict[int, float]]) -> int:
    """Return the number of points over all series."""
    return sum(len(p) for p in points.values())


@contextlib.contextmanager
def running(*processes: Any) -> Iterator[None]:
    """Stop every given process on the way out, whatever happened."""
    try:
        yield
    finally:
        for process in reversed(processes):
            with contextlib.suppress(Exception):
                process.stop()
