"""Exception tree shared by every citymesh package.

CitymeshError
 +-- ConfigError            a setting is missing or invalid (names key, value, allowed)
 +-- ProtocolError          a wire message breaks the gateway protocol
 |    +-- MessageRejected   with a machine-readable reason, counted by the collector
 +-- StorageError           the time-series store failed or was used wrongly
 +-- RegistryError          a registry entry is missing or conflicts
 |    +-- NotFoundError     no such tenant, gateway, sensor, key or token
 +-- QueryError             a render target, time or parameter is invalid
 +-- TransportError         an MQTT broker is unreachable or refused us
      +-- CommandTimeout    no response to a command in time
"""

from __future__ import annotations


class CitymeshError(Exception):
    """Base of every error raised on purpose by citymesh."""


class ConfigError(CitymeshError, ValueError):
    """A setting is missing or invalid; the message names the key and the fix."""


class ProtocolError(CitymeshError, ValueError):
    """A message does not follow the gateway protocol."""


class MessageRejected(ProtocolError):
    """A message was rejected for a reason the collector counts."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StorageError(CitymeshError):
    """The time-series store failed."""


class RegistryError(CitymeshError):
    """A registry entry is missing, conflicts with another or cannot be used."""


class NotFoundError(RegistryError, LookupError):
    """No tenant, gateway, sensor, key or token of that name exists."""


class QueryError(CitymeshError, ValueError):
    """A query (target, time expression or parameter) is invalid."""


class TransportError(CitymeshError, ConnectionError):
    """An MQTT broker could not be reached or rejected the connection."""


class CommandTimeout(TransportError, TimeoutError):
    """A gateway sent no response to a command within the allowed time."""
