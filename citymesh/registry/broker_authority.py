"""The registry as the embedded broker's source of MQTT credentials."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from citymesh.registry.identities import GatewayState, Identities
from citymesh.registry.secrets import new_secret
from citymesh.transport.broker_auth import (
    MqttIdentity,
    gateway_username,
    parse_gateway_username,
)
from citymesh.transport.tls import parse_certificate_name

logger = logging.getLogger(__name__)

# The login of the data centre's own collector on the embedded broker.
SERVICE_USERNAME = "citymesh-collector"


class RegistryBrokerAuthority:
    """Gateways log in with their enrolled passwords, services with their own.

    Service accounts (the collector, test tools) live only in memory: the data
    centre makes a fresh random password for them at every start.
    """

    def __init__(
        self, identities: Identities, services: Mapping[str, str] | None = None
    ) -> None:
        self._identities = identities
        self._services = dict(services or {})

    @classmethod
    def with_service(
        cls, identities: Identities
    ) -> tuple[RegistryBrokerAuthority, tuple[str, str]]:
        """Return an authority and a fresh (username, password) for the collector."""
        login = (SERVICE_USERNAME, new_secret())
        return cls(identities, dict([login])), login

    def add_service(self, username: str, password: str) -> None:
        """Let a data-centre service log in with full access."""
        self._services[username] = password

    def authenticate(self, username: str, password: str) -> MqttIdentity | None:
        """Return the identity for valid, unrevoked credentials, else None."""
        service_password = self._services.get(username)
        if service_password is not None:
            if hmac.compare_digest(service_password.encode(), password.encode()):
                return MqttIdentity(username)
            return None
        parsed = parse_gateway_username(username)
        if parsed is None:
            return None
        tenant, gateway = parsed
        if self._identities.certificates.requires_mtls(tenant):
            logger.debug("password login of %s rejected: mutual TLS required", username)
            return None
        if not self._identities.verify_gateway(tenant, gateway, password):
            return None
        return MqttIdentity(username, tenant, gateway)

    def authenticate_certificate(
        self, common_name: str, serial: int
    ) -> MqttIdentity | None:
        """Return the gateway a valid, current certificate names, else None."""
        parsed = parse_certificate_name(common_name)
        if parsed is None:
            return None
        tenant, gateway = parsed
        if not self._identities.certificates.is_valid(tenant, gateway, serial):
            return None
        return MqttIdentity(gateway_username(tenant, gateway), tenant, gateway)

    def is_active(self, identity: MqttIdentity) -> bool:
        """Tell whether a logged-in client is still allowed (not revoked)."""
        if identity.tenant is None or identity.gateway is None:
            return identity.username in self._services
        state = self._identities.gateway_state(identity.tenant, identity.gateway)
        return state is GatewayState.ACTIVE
