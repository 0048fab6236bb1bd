"""Broker addresses written as URLs: mqtt://host:port, or mqtts:// for TLS."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where an MQTT broker listens."""

    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        """Return the address as an mqtt:// or mqtts:// URL."""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse `mqtt://host[:port]` or `mqtts://host[:port]` or raise ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(
            f"broker URL {url!r} must start with mqtt:// or, for TLS, mqtts://"
        )
    tls = parts.scheme == "mqtts"
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r} has no host; write mqtt://HOST:PORT")
    try:
        port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
    except ValueError:
        raise ValueError(f"broker URL {url!r} has an invalid port") from None
    return BrokerAddress(parts.hostname, port, tls)
