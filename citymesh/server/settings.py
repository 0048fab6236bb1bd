"""Settings of the data-centre server (`citymesh server`)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from citymesh.carbon.settings import CarbonSettings
from citymesh.protocol.names import check_identifier
from citymesh.storage.retention_settings import RetentionSettings
from citymesh.transport.address import BrokerAddress, parse_broker_url

ENV_PREFIX = "CITYMESH_"

# Not 1883, because a local Mosquitto usually listens on that port.
DEFAULT_EMBEDDED_PORT = 11883


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_tls_pair(certfile: Path | None, keyfile: Path | None) -> None:
    """Check that a certificate and key are both given, readable and a pair."""
    if (certfile is None) != (keyfile is None):
        raise ValueError("set both tls_certfile and tls_keyfile, or neither")
    if certfile is None or keyfile is None:
        return
    for key, path in (("tls_certfile", certfile), ("tls_keyfile", keyfile)):
        if not path.is_file():
            raise ValueError(
                f"{key} {path} does not exist; give the path of a PEM file"
            )
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            certfile, keyfile
        )
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"tls_certfile {certfile} and tls_keyfile {keyfile} are not a PEM "
            f"certificate chain and its private key ({exc})"
        ) from None


class BrokerSettings(_Section):
    """The MQTT broker the collector uses."""

    mode: Literal["embedded", "external"] = "embedded"
    url: str = "mqtt://127.0.0.1:1883"
    """Address of an external broker (mode = "external")."""
    host: str = "127.0.0.1"
    """Interface the embedded broker listens on."""
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_EMBEDDED_PORT
    """Port of the embedded broker; 0 picks a free port."""
    username: str | None = None
    password: str | None = None
    tls: bool = False
    """Whether the embedded broker also listens for MQTT over TLS on tls_port."""
    tls_port: Annotated[int, Field(ge=0, le=65535)] = 8883
    """Port of the embedded broker's TLS listener; 0 picks a free port."""
    tls_certfile: Path | None = None
    """PEM server certificate chain of the TLS listener; without it (and
    tls_keyfile) the platform CA in data_dir/pki issues one for host,
    localhost and tls_hosts."""
    tls_keyfile: Path | None = None
    tls_hosts: list[str] = []
    """More names or addresses gateways reach the broker at, for the issued
    server certificate."""
    ca_file: Path | None = None
    """CA that verifies an external broker's certificate (mqtts:// url);
    None trusts the system's CAs."""

    @model_validator(mode="after")
    def _tls_pair(self) -> BrokerSettings:
        _check_tls_pair(self.tls_certfile, self.tls_keyfile)
        return self

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    def external_address(self) -> BrokerAddress:
        """Return the parsed address of the external broker."""
        return parse_broker_url(self.url)


class HttpSettings(_Section):
    """The address of the HTTP API and dashboard."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    tls_certfile: Path | None = None
    """PEM certificate chain; with tls_keyfile the API is served over HTTPS."""
    tls_keyfile: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        _check_tls_pair(self.tls_certfile, self.tls_keyfile)
        return self


class SecuritySettings(_Section):
    """API keys, rate limits and request limits of the HTTP API."""

    rate_limit_per_s: Annotated[float, Field(gt=0, le=1_000_000)] = 50.0
    """Sustained requests per second per API key (per client address without)."""
    rate_limit_burst: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    """Requests a key may send at once before the sustained rate applies."""
    max_request_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = 1024 * 1024
    """Larger request bodies are rejected with 413."""
    broker_auth: bool = True
    """Whether the embedded broker checks logins and topics against the registry."""
    mosquitto_dir: Path | None = None
    """Location of the Mosquitto password and ACL files synced from the registry."""
    mosquitto_pid_file: Path | None = None
    """Mosquitto's pid file; it gets SIGHUP to reload after each change."""


class CollectorSettings(_Section):
    """Receiving and write batching of the collector."""

    client_id: str = "citymesh-collector"
    tenant: str = "+"
    """Tenant whose gateways this collector serves; "+" serves every tenant."""

    @field_validator("tenant")
    @classmethod
    def _valid_tenant(cls, value: str) -> str:
        if value == "+":
            return value
        return check_identifier(value, 'tenant (or "+" for all tenants)')

    max_message_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    batch_max_points: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000
    batch_max_delay_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    """Milliseconds a write waits for more batches when none are queued (0:
    none). Batches that arrive while a write runs always go into the next
    write."""
    queue_max_batches: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    reconnect_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """Cap of the exponential backoff between reconnects to the broker."""
    share_group: str | None = None
    """MQTT shared-subscription group: collectors in one group split the
    gateways' messages between them. None subscribes this collector alone."""

    @field_validator("share_group")
    @classmethod
    def _valid_share_group(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError(
                f"share_group {value!r} may contain only letters, digits, _ and -"
            )
        return value


class ServerSettings(_Section):
    """All settings of `citymesh server`, validated once at start."""

    data_dir: Path = Path("citymesh-data")
    broker: BrokerSettings = BrokerSettings()
    http: HttpSettings = HttpSettings()
    collector: CollectorSettings = CollectorSettings()
    security: SecuritySettings = SecuritySettings()
    carbon: CarbonSettings = CarbonSettings()
    retention: RetentionSettings = RetentionSettings()
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
