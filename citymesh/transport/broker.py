"""The embedded MQTT broker (amqtt) for single-machine runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from amqtt.broker import Broker
from amqtt.errors import BrokerError

from citymesh.errors import ConfigError, TransportError
from citymesh.transport.address import BrokerAddress
from citymesh.transport.broker_auth import BrokerAuthority
from citymesh.transport.ports import free_port, port_in_use

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """The TLS listener of the embedded broker.

    Clients may present a certificate signed by `cafile`. amqtt 0.12 requests
    one without requiring it (ssl.CERT_OPTIONAL), so the auth plugin decides
    whether a login needs it.
    """

    port: int
    certfile: Path
    keyfile: Path
    cafile: Path
    option_name: str = "broker.tls_port"


class EmbeddedBroker:
    """An in-process MQTT 3.1.1 broker listening on one TCP address.

    Port 0 picks a free port, and `address` holds the chosen one after start.
    """

    def __init__(
        self,
        host: str,
        port: int,
        option_name: str = "broker.port",
        authority: BrokerAuthority | None = None,
        tls: BrokerTls | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._option_name = option_name
        self._authority = authority
        self._tls = tls
        self._broker: Broker | None = None
        self.address = BrokerAddress(host, port)
        self.tls_address: BrokerAddress | None = None

    def _pick_port(self, port: int, option_name: str) -> int:
        port = port or free_port(self._host)
        if port_in_use(self._host, port):
            raise ConfigError(
                "cannot start the embedded MQTT broker: "
                f"{self._host}:{port} is already "
                f"in use. Choose another port with "
                f"{option_name}, or 0 for any free port"
            )
        return port

    async def __aenter__(self) -> EmbeddedBroker:
        port = self._pick_port(self._port, self._option_name)
        listeners: dict[str, Any] = {
            "default": {"type": "tcp", "bind": f"{self._host}:{port}"}
        }
        tls_port = None
        if self._tls is not None:
            tls_port = self._pick_port(self._tls.port, self._tls.option_name)
            listeners["tls"] = {
                "type": "tcp",
                "bind": f"{self._host}:{tls_port}",
                "ssl": True,
                "certfile": str(self._tls.certfile),
                "keyfile": str(self._tls.keyfile),
                "cafile": str(self._tls.cafile),
            }

        config: dict[str, Any] = {
            "listeners": listeners,
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                    "allow_anonymous": True
                },
            },
        }
        if self._authority is not None:
            # Logins and topics are checked against the registry instead.
            config["plugins"] = {
                "citymesh.transport.broker_auth.RegistryAuthPlugin": {
                    "authority": self._authority
                }
            }
        self._broker = Broker(config)
        try:
            await self._broker.start()
        except BrokerError as exc:
            raise TransportError(
                f"embedded MQTT broker failed to start: {exc}"
            ) from exc
        self.address = BrokerAddress(self._host, port)
        logger.info("embedded MQTT broker listening on %s", self.address)
        if tls_port is not None:
            self.tls_address = BrokerAddress(self._host, tls_port, tls=True)
            logger.info("embedded MQTT broker listening on %s", self.tls_address)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            logger.info("embedded MQTT broker on %s stopped", self.address)
