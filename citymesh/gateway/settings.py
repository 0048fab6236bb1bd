"""Settings of a gateway agent (`citymesh gateway`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from citymesh.gateway.iqrf.settings import IqrfSettings
from citymesh.protocol.names import check_identifier
from citymesh.transport.address import BrokerAddress, parse_broker_url

ENV_PREFIX = "CITYMESH_GATEWAY_"
# The MQTT login `citymesh gateway enroll` stores under data_dir; the settings
# use it unless mqtt.password is set.
CREDENTIALS_FILE = "mqtt-login.toml"
# The client certificate, its key and the platform CA certificate that
# `citymesh gateway enroll` stores under data_dir for tenants requiring mutual
# TLS; the settings use them unless mqtt.certfile or mqtt.ca_file is set.
CLIENT_CERT_FILE = "mqtt-client.pem"
CLIENT_KEY_FILE = "mqtt-client.key"
CA_CERT_FILE = "mqtt-ca.pem"

# Address of the embedded broker that `citymesh server` starts by default.
DEFAULT_BROKER_URL = "mqtt://127.0.0.1:11883"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    """The broker of the data centre and how to talk to it."""

    url: str = DEFAULT_BROKER_URL
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    """Defaults to citymesh-gw-<tenant>-<gateway>."""
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    connect_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    reconnect_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    ack_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 20.0
    """How long a publish waits for its PUBACK before the link counts as dead."""
    ca_file: Path | None = None
    """PEM CA certificate that verifies the broker (mqtts:// url); None trusts
    the system's CAs."""
    certfile: Path | None = None
    """PEM client certificate for mutual TLS; needs keyfile."""
    keyfile: Path | None = None

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @model_validator(mode="after")
    def _certificate_pair(self) -> MqttSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("set both mqtt.certfile and mqtt.keyfile, or neither")
        return self

    def address(self) -> BrokerAddress:
        """Return the parsed broker address."""
        return parse_broker_url(self.url)


class PublishSettings(_Section):
    """Batching of readings and the status cadence."""

    batch_max_points: Annotated[int, Field(ge=1, le=100_000)] = 1000
    batch_max_delay_ms: Annotated[int, Field(ge=0, le=60_000)] = 200
    status_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    max_inflight: Annotated[int, Field(ge=1, le=1000)] = 8
    """Batches published and awaiting their PUBACK at the same time."""
    replay_max_readings_per_s: Annotated[int, Field(ge=0)] = 20_000
    """Rate at which buffered readings are replayed after an outage; 0 is no limit.

    Live readings are sent besides this budget. 20,000 readings/s is about
    0.6 MB/s of JSON, which a typical LTE uplink carries.
    """


class BufferSettings(_Section):
    """The durable on-disk buffer of readings not yet acknowledged by the broker."""

    max_bytes: Annotated[int, Field(ge=64 * 1024)] = 256 * 1024 * 1024
    """Largest size of the buffer's database file. About 45 bytes a reading, so
    the default holds roughly 6 million readings (two days at 30 readings/s)."""
    max_age_s: Annotated[float, Field(ge=0)] = 7 * 86_400.0
    """Readings accepted longer ago than this are dropped unsent; 0 keeps them."""
    commit_interval_ms: Annotated[int, Field(ge=0, le=10_000)] = 100
    """Readings arriving within this long of the previous commit are committed
    together, so a steady source costs at most ten fsyncs a second at 100. A
    power cut loses the uncommitted readings of at most one interval. 0
    commits every slice from the source on its own."""


class ReplaySettings(_Section):
    """Recorded data sets replayed as live sensor nodes."""

    sources: list[Literal["occupancy", "pedestrian", "traffic"]] = [
        "occupancy",
        "pedestrian",
        "traffic",
    ]
    speed: Annotated[float, Field(ge=0)] = 600.0
    """Recorded seconds per second: 600 plays a minute per 100 ms, 0 is unpaced."""
    timestamps: Literal["recorded", "now"] = "now"
    loop: bool = True
    """Start again at the end (only with timestamps = "now")."""
    limit: Annotated[int, Field(ge=1)] | None = None
    """Rows to replay per source and pass; None replays everything."""


class GatewaySettings(_Section):
    """All settings of `citymesh gateway`, validated once at start."""

    tenant: str = "demo"
    site: str = "city"
    gateway: str = "gw-1"
    data_dir: Path = Path("citymesh-gateway")
    """Holds the reading buffer, `<gateway>.buffer.sqlite`."""
    mqtt: MqttSettings = MqttSettings()
    publish: PublishSettings = PublishSettings()
    buffer: BufferSettings = BufferSettings()
    replay: ReplaySettings = ReplaySettings()
    source: Literal["replay", "iqrf"] = "replay"
    """Origin of the readings: the [replay] data sets or the [iqrf] network."""
    iqrf: IqrfSettings = IqrfSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("tenant", "site", "gateway")
    @classmethod
    def _valid_identifier(cls, value: str) -> str:
        return check_identifier(value, "identifier")

    @model_validator(mode="before")
    @classmethod
    def _enrolled_login(cls, data: Any) -> Any:
        """Fill mqtt.username/password from `citymesh gateway enroll`'s file."""
        if not isinstance(data, dict):
            return data
        mqtt = data.get("mqtt")
        if isinstance(mqtt, BaseModel):
            mqtt = mqtt.model_dump(exclude_unset=True)
        mqtt = dict(mqtt or {})
        if mqtt.get("password"):
            return data
        path = Path(data.get("data_dir") or "citymesh-gateway") / CREDENTIALS_FILE
        try:
            login = tomllib.loads(path.read_text())
        except FileNotFoundError:
            return data
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read the enrolled login {path}: {exc}") from exc
        mqtt.setdefault("username", login.get("username"))
        mqtt["password"] = login.get("password")
        return {**data, "mqtt": mqtt}

    @model_validator(mode="before")
    @classmethod
    def _enrolled_certificate(cls, data: Any) -> Any:
        """Fill mqtt.certfile/keyfile/ca_file from `citymesh gateway enroll`'s files."""
        if not isinstance(data, dict):
            return data
        mqtt = data.get("mqtt")
        if isinstance(mqtt, BaseModel):
            mqtt = mqtt.model_dump(exclude_unset=True)
        mqtt = dict(mqtt or {})
        directory = Path(data.get("data_dir") or "citymesh-gateway")
        certfile, keyfile = directory / CLIENT_CERT_FILE, directory / CLIENT_KEY_FILE
        if not mqtt.get("certfile") and certfile.exists() and keyfile.exists():
            mqtt["certfile"], mqtt["keyfile"] = certfile, keyfile
        if not mqtt.get("ca_file") and (directory / CA_CERT_FILE).exists():
            mqtt["ca_file"] = directory / CA_CERT_FILE
        return {**data, "mqtt": mqtt}

    @property
    def client_id(self) -> str:
        """Return the MQTT client id."""
        return self.mqtt.client_id or f"citymesh-gw-{self.tenant}-{self.gateway}"
