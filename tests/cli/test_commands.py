"""The citymesh command as a user runs it: real processes, signals and ports."""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from citymesh.gateway.sources import open_source
from citymesh.storage.duckdb_store import DuckDBStore
from citymesh.transport.ports import free_port

CITYMESH = [sys.executable, "-m", "citymesh.cli"]


def _wait_http(
    url: str,
    process: subprocess.Popen[str],
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited early:\n{process.communicate()[1]}")
        try:
            if httpx.get(url, timeout=1, headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def _printed_key(lines: list[str], process: subprocess.Popen[str]) -> str:
    """Wait for the admin key the demo prints and return it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in list(lines):
            if "admin key:" in line:
                return line.split("admin key:", 1)[1].strip()
        assert process.poll() is None, "".join(lines)
        time.sleep(0.1)
    raise AssertionError(f"the demo printed no admin key:\n{''.join(lines)}")


def _run_ok(command: list[str]) -> str:
    """Run a citymesh command that must succeed and return its stdout, stripped."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def listening_socket() -> Iterator[int]:
    """A port that something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_demo_signal_loses_no_accepted_reading(tmp_path: Path, signum: int) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*CITYMESH, "demo", "--http-port", str(port), "--data-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    headers = {"Authorization": f"Bearer {_printed_key(lines, process)}"}
    _wait_http(f"{base}/api/v1/collector/stats", process, headers=headers)
    deadline = time.monotonic() + 30
    stats_url = f"{base}/api/v1/collector/stats"
    while httpx.get(stats_url, headers=headers).json()["points_stored"] < 500:
        assert time.monotonic() < deadline, "the demo stored too few readings"
        time.sleep(0.2)
    assert httpx.get(stats_url).status_code == 401
    process.send_signal(signum)
    process.wait(timeout=60)
    reader.join(10)
    process.stderr.close()
    err = "".join(lines)
    assert process.returncode == 0, err
    assert "dashboard:  http://127.0.0.1:" in err

    gateway = re.search(
        r"gateway demo/gw-1 stopped: (\d+) readings accepted, (\d+) sent in "
        r"\d+ batches, (\d+) dropped, (\d+) still buffered",
        err,
    )
    stopped = re.search(r"collector stopped: (\{.*\})", err)
    assert gateway is not None and stopped is not None, err
    accepted, sent, dropped, buffered = (int(g) for g in gateway.groups())
    assert sent == accepted
    assert dropped == 0
    assert buffered == 0
    stats = ast.literal_eval(stopped.group(1))
    assert stats["points_accepted"] == sent
    assert stats["rejected_total"] == 0
    store = DuckDBStore(tmp_path / "timeseries.duckdb")
    try:
        assert store.count_points() == stats["points_accepted"]
    finally:
        store.close()
    assert stats["points_stored"] == stats["points_accepted"]


def test_demo_http_port_in_use_names_option(
    tmp_path: Path, listening_socket: int
) -> None:
    result = subprocess.run(
        [
            *CITYMESH,
            "demo",
            "--http-port",
            str(listening_socket),
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"127.0.0.1:{listening_socket}: the port is in use" in result.stderr
    assert "--http-port" in result.stderr


def test_server_broker_port_in_use_names_option(
    tmp_path: Path, listening_socket: int
) -> None:
    env = {
        **os.environ,
        "CITYMESH_BROKER__PORT": str(listening_socket),
        "CITYMESH_HTTP__PORT": str(free_port()),
        "CITYMESH_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [*CITYMESH, "server"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert "broker.port" in result.stderr


def test_server_bad_config_names_key(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('[collector]\nbatch_max_points = "many"\n')
    result = subprocess.run(
        [*CITYMESH, "server", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "collector.batch_max_points = 'many'" in result.stderr
    assert "valid integer" in result.stderr


@pytest.mark.mosquitto
def test_server_and_gateway_processes_via_mosquitto(tmp_path: Path) -> None:
    http_port = free_port()
    tenant = f"t{os.getpid()}x{http_port}"
    server_config = tmp_path / "server.toml"
    server_config.write_text(
        f'data_dir = "{tmp_path / "dc"}"\n'
        '[broker]\nmode = "external"\nurl = "mqtt://127.0.0.1:1883"\n'
        f"[http]\nport = {http_port}\n"
        f'[collector]\nclient_id = "collector-{tenant}"\ntenant = "{tenant}"\n'
    )
    gateway_config = tmp_path / "gateway.toml"
    gateway_config.write_text(
        f'tenant = "{tenant}"\nsite = "melbourne"\ngateway = "gw-7"\n'
        f'data_dir = "{tmp_path / "gw"}"\n'
        '[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'
        '[replay]\nsources = ["pedestrian"]\nspeed = 0\ntimestamps = "recorded"\n'
        "loop = false\nlimit = 330\n"
    )
    admin = [*CITYMESH, "admin"]
    config = ["--config", str(server_config)]
    _run_ok([*admin, "tenant", "create", tenant, *config])
    token = _run_ok([*admin, "gateway", "add", tenant, "gw-7", *config])
    key = _run_ok([*admin, "key", "issue", "--platform", "--scope", "read", *config])
    headers = {"X-API-Key": key}
    server = subprocess.Popen(
        [*CITYMESH, "server", "--config", str(server_config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{http_port}"
        _wait_http(f"{base}/api/v1/collector/stats", server, headers=headers)
        enrol = ["enroll", "--token", token, "--api", base]
        _run_ok([*CITYMESH, "gateway", *enrol, "--config", str(gateway_config)])
        gateway = subprocess.run(
            [*CITYMESH, "gateway", "--config", str(gateway_config), "--once"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert gateway.returncode == 0, gateway.stderr
        assert "330 readings accepted, 330 sent in" in gateway.stderr
        deadline = time.monotonic() + 20
        stats_url = f"{base}/api/v1/collector/stats"
        while httpx.get(stats_url, headers=headers).json()["points_stored"] < 330:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        sensors = httpx.get(
            f"{base}/api/v1/sensors", params={"tenant": tenant}, headers=headers
        ).json()
        assert len(sensors) == 33
        reported = {r.device for r in open_source("pedestrian", limit=330).readings()}
        assert {s["device"] for s in sensors if s["latest"] is not None} == reported
        gateways = httpx.get(
            f"{base}/api/v1/gateways", params={"tenant": tenant}, headers=headers
        ).json()
        assert [(g["gateway"], g["site"], g["online"]) for g in gateways] == [
            ("gw-7", "melbourne", False)
        ]
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err


def test_demo_austin_scenario_runs_platform(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            *CITYMESH,
            "demo",
            "--scenario",
            "austin",
            "--http-port",
            str(port),
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        headers = {"Authorization": f"Bearer {_printed_key(lines, process)}"}
        _wait_http(f"{base}/api/v1/collector/stats", process, headers=headers)
        deadline = time.monotonic() + 90
        while True:
            maps = httpx.get(f"{base}/api/v1/topology", headers=headers).json()
            sensors = httpx.get(f"{base}/api/v1/sensors", headers=headers).json()
            with_values = [s for s in sensors if s["latest"] is not None]
            if maps and maps[0]["nodes"] == 41 and len(with_values) == 60:
                break
            assert time.monotonic() < deadline, (maps, len(with_values))
            time.sleep(0.5)
        quantities = {s["quantity"] for s in with_values}
        assert quantities == {"co2", "temperature", "humidity"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(10)
        process.stderr.close()
    assert process.returncode == 0, "".join(lines)
