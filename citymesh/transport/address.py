"""Broker addresses written as URLs: mqtt://host:port."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 1883


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where an MQTT broker listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """Return the address as an mqtt:// URL."""
        return f"mqtt://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse `mqtt://host[:port]` or raise ValueError naming the problem."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt":
        raise ValueError(
            f"broker URL {url!r} must start with mqtt:// (TLS support is not built yet)"
        )
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r} has no host; write mqtt://HOST:PORT")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"broker URL {url!r} has an invalid port") from None
    return BrokerAddress(parts.hostname, port)
