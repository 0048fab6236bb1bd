"""The [iqrf] section of gateway.toml: loading, environment overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from citymesh.config import load_settings
from citymesh.errors import ConfigError
from citymesh.gateway.settings import ENV_PREFIX, GatewaySettings
from tests.gateway.iqrf.conftest import INTEL_LAB, ULB_LIBRARY


def _load(
    tmp_path: Path, text: str, environ: dict[str, str] | None = None
) -> GatewaySettings:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return load_settings(GatewaySettings, path, ENV_PREFIX, environ=environ or {})


def test_iqrf_section_defaults_to_replay(tmp_path: Path) -> None:
    settings = _load(tmp_path, "")
    assert settings.source == "replay"
    assert settings.iqrf.transport == "simulator"
    assert settings.iqrf.request_hops == 0xFF


def test_iqrf_section_reads_every_key(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        f"""
source = "iqrf"
[iqrf]
transport = "daemon"
collect_interval_s = 30
tx_power = 5
discovery_max_address = 100
request_hops = 3
response_hops = 4
[iqrf.daemon]
host = "iqrf-gw.local"
port = 8883
username = "citymesh"
password = "secret"
request_topic = "gw/req"
response_topic = "gw/resp"
tls = true
[iqrf.simulator]
scenario = "ulb_library"
plan_dir = "{ULB_LIBRARY}"
time_scale = 0.5
start_offset_s = 1800
""",
    )
    iqrf = settings.iqrf
    assert settings.source == "iqrf"
    assert iqrf.transport == "daemon"
    assert iqrf.collect_interval_s == 30
    assert (iqrf.tx_power, iqrf.discovery_max_address) == (5, 100)
    assert (iqrf.request_hops, iqrf.response_hops) == (3, 4)
    assert iqrf.daemon.host == "iqrf-gw.local"
    assert iqrf.daemon.port == 8883
    assert iqrf.daemon.tls is True
    assert (iqrf.daemon.request_topic, iqrf.daemon.response_topic) == (
        "gw/req",
        "gw/resp",
    )
    assert iqrf.simulator.plan_dir == ULB_LIBRARY
    assert iqrf.simulator.start_offset_s == 1800


def test_iqrf_environment_overrides_file(tmp_path: Path) -> None:
    environ = {
        "CITYMESH_GATEWAY_SOURCE": "iqrf",
        "CITYMESH_GATEWAY_IQRF__TX_POWER": "2",
        "CITYMESH_GATEWAY_IQRF__SIMULATOR__SCENARIO": "austin",
        "CITYMESH_GATEWAY_IQRF__SIMULATOR__PLAN_DIR": str(INTEL_LAB),
        "CITYMESH_GATEWAY_IQRF__DAEMON__PASSWORD": "from-env",
    }
    settings = _load(tmp_path, "[iqrf]\ntx_power = 6\n", environ)
    assert settings.source == "iqrf"
    assert settings.iqrf.tx_power == 2
    assert settings.iqrf.simulator.plan_dir == INTEL_LAB
    assert settings.iqrf.daemon.password == "from-env"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[iqrf]\ntx_power = 9\n",
            "iqrf.tx_power = 9: Input should be less than or equal to 7",
        ),
        (
            '[iqrf]\ntransport = "radio"\n',
            "iqrf.transport = 'radio': Input should be 'daemon' or 'simulator'",
        ),
        (
            "[iqrf]\ndiscovery_max_address = 240\n",
            "iqrf.discovery_max_address = 240: Input should be less than or equal "
            "to 239",
        ),
        (
            "[iqrf.daemon]\nport = 80\n",
            "iqrf.daemon.port = 80: Input should be greater than or equal to 1024",
        ),
        (
            '[iqrf.simulator]\nscenario = "moon"\n',
            "iqrf.simulator.scenario = 'moon': Input should be 'austin', "
            "'city_block' or 'ulb_library'",
        ),
        ('source = "radio"\n', "source = 'radio': Input should be 'replay' or 'iqrf'"),
        ("[iqrf]\nhops = 3\n", "iqrf.hops: unknown key"),
    ],
)
def test_iqrf_invalid_value_names_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, text)
    assert expected in str(raised.value)


def test_iqrf_ulb_library_needs_plan_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, '[iqrf.simulator]\nscenario = "ulb_library"\n')
    message = str(raised.value)
    assert "iqrf.simulator.plan_dir = None" in message
    assert "needs plan_dir" in message
    assert "neighbors.txt and readings.txt" in message


def test_iqrf_plan_dir_without_files(tmp_path: Path) -> None:
    text = f'[iqrf.simulator]\nscenario = "ulb_library"\nplan_dir = "{tmp_path}"\n'
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, text)
    message = str(raised.value)
    assert f"iqrf.simulator.plan_dir = '{tmp_path}'" in message
    assert "plan_dir contains no neighbors.txt or readings.txt" in message
    assert "env: CITYMESH_GATEWAY_IQRF__SIMULATOR__PLAN_DIR" in message
