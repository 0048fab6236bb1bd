"""Settings of a gateway agent (`citymesh gateway`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from citymesh.protocol.names import check_identifier
from citymesh.transport.address import BrokerAddress, parse_broker_url

ENV_PREFIX = "CITYMESH_GATEWAY_"

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

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    def address(self) -> BrokerAddress:
        """Return the parsed broker address."""
        return parse_broker_url(self.url)


class PublishSettings(_Section):
    """Batching of readings and the status cadence."""

    batch_max_points: Annotated[int, Field(ge=1, le=100_000)] = 1000
    batch_max_delay_ms: Annotated[int, Field(ge=0, le=60_000)] = 200
    status_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    buffer_max_batches: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    """Batches held while the broker is unreachable; beyond it the oldest go."""


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
    mqtt: MqttSettings = MqttSettings()
    publish: PublishSettings = PublishSettings()
    replay: ReplaySettings = ReplaySettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("tenant", "site", "gateway")
    @classmethod
    def _valid_identifier(cls, value: str) -> str:
        return check_identifier(value, "identifier")

    @property
    def client_id(self) -> str:
        """Return the MQTT client id."""
        return self.mqtt.client_id or f"citymesh-gw-{self.tenant}-{self.gateway}"
