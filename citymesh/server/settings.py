"""Settings of the data-centre server (`citymesh server`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from citymesh.transport.address import BrokerAddress, parse_broker_url

ENV_PREFIX = "CITYMESH_"

# Not 1883: a local Mosquitto usually holds that port.
DEFAULT_EMBEDDED_PORT = 11883


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Section):
    """Which MQTT broker the collector uses."""

    mode: Literal["embedded", "external"] = "embedded"
    url: str = "mqtt://127.0.0.1:1883"
    """Address of an external broker (mode = "external")."""
    host: str = "127.0.0.1"
    """Interface the embedded broker listens on."""
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_EMBEDDED_PORT
    """Port of the embedded broker; 0 picks a free port."""
    username: str | None = None
    password: str | None = None

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    def external_address(self) -> BrokerAddress:
        """Return the parsed address of the external broker."""
        return parse_broker_url(self.url)


class HttpSettings(_Section):
    """Where the HTTP API and dashboard listen."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080


class CollectorSettings(_Section):
    """How the collector receives and writes."""

    client_id: str = "citymesh-collector"
    tenant: str = "+"
    """Tenant whose gateways this collector serves; "+" serves every tenant."""
    max_message_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    batch_max_points: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000
    batch_max_delay_ms: Annotated[int, Field(ge=0, le=60_000)] = 100
    queue_max_batches: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000


class ServerSettings(_Section):
    """All settings of `citymesh server`, validated once at start."""

    data_dir: Path = Path("citymesh-data")
    broker: BrokerSettings = BrokerSettings()
    http: HttpSettings = HttpSettings()
    collector: CollectorSettings = CollectorSettings()
    registry_url: str | None = None
    """SQLAlchemy URL of the registry; default SQLite in data_dir."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def resolved_registry_url(self) -> str:
        """Return the registry URL, defaulting to SQLite under data_dir."""
        if self.registry_url:
            return self.registry_url
        return f"sqlite:///{(self.data_dir / 'registry.sqlite').resolve()}"

    @property
    def store_path(self) -> Path:
        """Return the path of the DuckDB time-series file."""
        return self.data_dir / "timeseries.duckdb"
