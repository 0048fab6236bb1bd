"""Settings load from TOML and the environment, and errors name key, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from citymesh.config import load_settings
from citymesh.errors import ConfigError
from citymesh.gateway.settings import GatewaySettings
from citymesh.server.settings import ENV_PREFIX, ServerSettings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_load_defaults_without_file() -> None:
    settings = load_settings(ServerSettings, None, ENV_PREFIX, environ={})
    assert settings.broker.mode == "embedded"
    assert settings.broker.port == 11883
    assert settings.http.port == 8080
    assert settings.data_dir == Path("citymesh-data")


def test_load_file_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[broker]\nmode = "external"\nurl = "mqtt://127.0.0.1:1883"\n'
        "[http]\nport = 9090\n",
    )
    settings = load_settings(ServerSettings, path, ENV_PREFIX, environ={})
    assert settings.broker.mode == "external"
    assert settings.broker.external_address().port == 1883
    assert settings.http.port == 9090


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http]\nport = 9090\n")
    environ = {"CITYMESH_HTTP__PORT": "9191", "CITYMESH_DATA_DIR": "/srv/citymesh"}
    settings = load_settings(ServerSettings, path, ENV_PREFIX, environ=environ)
    assert settings.http.port == 9191
    assert settings.data_dir == Path("/srv/citymesh")


def test_invalid_value_names_key_value_and_env(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http]\nport = 70000\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(ServerSettings, path, ENV_PREFIX, environ={})
    message = str(caught.value)
    assert "http.port = 70000" in message
    assert "less than or equal to 65535" in message
    assert "CITYMESH_HTTP__PORT" in message


def test_invalid_choice_lists_allowed_values(tmp_path: Path) -> None:
    path = _write(tmp_path, '[broker]\nmode = "cluster"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(ServerSettings, path, ENV_PREFIX, environ={})
    assert "broker.mode = 'cluster'" in str(caught.value)
    assert "'embedded' or 'external'" in str(caught.value)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http]\nprot = 9000\n")
    with pytest.raises(ConfigError, match=r"http\.prot: unknown key"):
        load_settings(ServerSettings, path, ENV_PREFIX, environ={})


def test_broken_toml_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http\nport = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(ServerSettings, path, ENV_PREFIX, environ={})


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(ServerSettings, tmp_path / "absent.toml", ENV_PREFIX, environ={})


def test_bad_broker_url_explains_form(tmp_path: Path) -> None:
    path = _write(tmp_path, '[broker]\nurl = "http://127.0.0.1:1883"\n')
    with pytest.raises(ConfigError, match="must start with mqtt://"):
        load_settings(ServerSettings, path, ENV_PREFIX, environ={})


def test_gateway_identifier_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, 'gateway = "gw.1"\n')
    with pytest.raises(ConfigError, match=r"gateway = 'gw\.1'.*letters, digits"):
        load_settings(GatewaySettings, path, "CITYMESH_GATEWAY_", environ={})


def test_gateway_env_prefix_sets_nested(tmp_path: Path) -> None:
    environ = {
        "CITYMESH_GATEWAY_MQTT__URL": "mqtt://127.0.0.1:1883",
        "CITYMESH_GATEWAY_REPLAY__SPEED": "60",
        "CITYMESH_GATEWAY_REPLAY__TIMESTAMPS": "recorded",
    }
    settings = load_settings(
        GatewaySettings, None, "CITYMESH_GATEWAY_", environ=environ
    )
    assert settings.mqtt.address().port == 1883
    assert settings.replay.speed == 60.0
    assert settings.replay.timestamps == "recorded"


def test_server_ignores_gateway_variables() -> None:
    environ = {"CITYMESH_GATEWAY_MQTT__URL": "mqtt://127.0.0.1:1883"}
    settings = load_settings(
        ServerSettings,
        None,
        ENV_PREFIX,
        environ=environ,
        env_exclude=("CITYMESH_GATEWAY_",),
    )
    assert settings.http.port == 8080
