"""`citymesh gateway` as a process reading a simulated IQRF mesh from its config."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import RunningServer
from tests.gateway.iqrf.conftest import ULB_LIBRARY

CITYMESH = [sys.executable, "-m", "citymesh.cli"]
GATEWAY = "gw-ulb"
# A wide console keeps each error on one line of stderr.
ENVIRONMENT = {**os.environ, "COLUMNS": "300"}


def _config(server: RunningServer, tmp_path: Path) -> Path:
    username, password = server.gateway_login(server.tenant, GATEWAY)
    path = tmp_path / "gateway.toml"
    # Start in the fourth radio power level of the recording, where discovery
    # reaches all 19 nodes. At speed 1 the links stay the same for 300 s.
    path.write_text(
        f"""
tenant = "{server.tenant}"
site = "library"
gateway = "{GATEWAY}"
data_dir = "{tmp_path / "gateway"}"
source = "iqrf"

[mqtt]
url = "{server.broker.url}"
username = "{username}"
password = "{password}"

[publish]
batch_max_delay_ms = 20

[iqrf]
collect_interval_s = 0.5
request_timeout_s = 1.0

[iqrf.simulator]
scenario = "ulb_library"
plan_dir = "{ULB_LIBRARY}"
time_scale = 0.02
lossless = true
speed = 1.0
start_offset_s = 2100
"""
    )
    return path


def test_gateway_process_iqrf_simulator_stores_sensors(
    server: RunningServer, tmp_path: Path
) -> None:
    config = _config(server, tmp_path)
    process = subprocess.Popen(
        [*CITYMESH, "gateway", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENVIRONMENT,
    )
    store = server.centre.store
    assert store is not None
    prefix = f"{server.tenant}.library.{GATEWAY}."
    expected = sorted(
        f"{prefix}node-{address}.{quantity}"
        for address in range(1, 20)
        for quantity in ("temperature", "humidity")
    )
    try:

        def all_stored() -> bool:
            assert process.poll() is None, "the gateway exited early"
            return len(store.latest(expected)) == len(expected)

        server.wait_for(all_stored, timeout=60)
        values = {v.series.name: v.value for v in store.latest(expected)}
        # The library's SHT11 readings in the first 40 minutes of the run.
        temperatures = [v for n, v in values.items() if n.endswith(".temperature")]
        humidities = [v for n, v in values.items() if n.endswith(".humidity")]
        assert all(22 <= t <= 28 for t in temperatures), temperatures
        assert all(35 <= h <= 70 for h in humidities), humidities
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "starting with an IQRF network of 19 devices" in err


def test_gateway_process_bad_iqrf_value_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('source = "iqrf"\n[iqrf]\nrequest_hops = 300\n')
    result = subprocess.run(
        [*CITYMESH, "gateway", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENVIRONMENT,
    )
    assert result.returncode == 2
    assert (
        "iqrf.request_hops = 300: Input should be less than or equal to 255"
        in result.stderr
    )
    assert "CITYMESH_GATEWAY_IQRF__REQUEST_HOPS" in result.stderr
