"""Who may connect to the embedded broker and which topics each client may use.

A gateway logs in as `<tenant>.<gateway>` with the password it got at
enrolment, or on the TLS listener with a client certificate signed by the
platform CA whose common name is `<tenant>/<gateway>`. A presented certificate
takes precedence over a username and password. A gateway may publish only
under `citymesh/v1/<tenant>/<gateway>/` (any channel but `commands`) and
subscribe only to its own `commands` topic, and its last will must obey the
same rule. Service accounts (the collector) may use every topic. The
credentials themselves live in the data centre's registry, behind the
`BrokerAuthority` protocol, so this module stays free of data-centre code.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from citymesh.protocol.names import is_identifier
from citymesh.protocol.topics import PREFIX, Channel
from citymesh.transport.tls import peer_certificate

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MqttIdentity:
    """An authenticated MQTT client: a gateway, or a service when tenant is None."""

    username: str
    tenant: str | None = None
    gateway: str | None = None

    @property
    def service(self) -> bool:
        """Tell whether the client is a data-centre service with full access."""
        return self.tenant is None


def gateway_username(tenant: str, gateway: str) -> str:
    """Return the MQTT username of a gateway: `<tenant>.<gateway>`."""
    return f"{tenant}.{gateway}"


def parse_gateway_username(username: str) -> tuple[str, str] | None:
    """Split a gateway username into (tenant, gateway), or None if it is not one."""
    tenant, dot, gateway = username.partition(".")
    if not dot or not is_identifier(tenant) or not is_identifier(gateway):
        return None
    return tenant, gateway


def may_publish(identity: MqttIdentity, topic: str) -> bool:
    """Tell whether `identity` may publish on `topic` (never a wildcard)."""
    if identity.service:
        return True
    parts = topic.split("/")
    return (
        len(parts) == 5
        and "/".join(parts[:2]) == PREFIX
        and parts[2] == identity.tenant
        and parts[3] == identity.gateway
        and parts[4] != Channel.COMMANDS.value
        and not any(c in topic for c in "+#")
    )


def may_subscribe(identity: MqttIdentity, topic_filter: str) -> bool:
    """Tell whether `identity` may subscribe to `topic_filter`."""
    if identity.service:
        return True
    own = f"{PREFIX}/{identity.tenant}/{identity.gateway}/{Channel.COMMANDS.value}"
    return topic_filter == own


class BrokerAuthority(Protocol):
    """The source of MQTT credentials; the registry implements it."""

    def authenticate(self, username: str, password: str) -> MqttIdentity | None:
        """Return the identity for valid, unrevoked credentials, else None."""
        ...

    def authenticate_certificate(
        self, common_name: str, serial: int
    ) -> MqttIdentity | None:
        """Return the identity of a valid, unrevoked client certificate, else None."""
        ...

    def is_active(self, identity: MqttIdentity) -> bool:
        """Tell whether an identity that logged in earlier is still allowed."""
        ...


class _Counters:
    """Rejections of the broker plugin, by reason."""

    def __init__(self) -> None:
        self.by_reason: dict[str, int] = {}

    def count(self, reason: str) -> int:
        value = self.by_reason.get(reason, 0) + 1
        self.by_reason[reason] = value
        return value


class RegistryAuthPlugin(BaseAuthPlugin, BaseTopicPlugin):  # type: ignore[misc]
    """amqtt plugin: password login against the authority, then topic ACLs."""

    @dataclass
    class Config:
        """The authority to ask and the counters to fill."""

        authority: Any = None
        counters: Any = field(default_factory=_Counters)

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._authority: BrokerAuthority = self.config.authority
        self._counters: _Counters = self.config.counters
        self._identities: dict[str, MqttIdentity] = {}
        # Which username first used each client id. Another user taking the
        # same id would make the broker drop the holder's session, so a
        # gateway could otherwise disconnect the collector or another gateway.
        self._id_owners: dict[str, str] = {}

    def _reject(self, reason: str, client_id: str | None, detail: str) -> None:
        count = self._counters.count(reason)
        if count == 1 or count % 1000 == 0:
            logger.warning(
                "broker rejected client %s (%s, %d so far): %s",
                client_id,
                reason,
                count,
                detail,
            )

    async def _certificate_identity(self, session: Session) -> MqttIdentity | None:
        peer = session.ssl_object.getpeercert() if session.ssl_object else None
        certificate = peer_certificate(peer)
        if certificate is None:
            return None
        identity = await asyncio.to_thread(
            self._authority.authenticate_certificate,
            certificate.common_name,
            certificate.serial,
        )
        if identity is None:
            self._reject(
                "bad_certificate",
                session.client_id,
                f"certificate {certificate.common_name!r} serial "
                f"{certificate.serial:x} is not valid",
            )
        return identity

    async def authenticate(self, *, session: Session) -> bool | None:
        """Accept a client only with valid credentials and an allowed last will."""
        has_certificate = bool(
            session.ssl_object is not None and session.ssl_object.getpeercert()
        )
        if has_certificate:
            identity = await self._certificate_identity(session)
            if identity is None:
                return False
            # Like Mosquitto's use_identity_as_username: the certificate names
            # the client, whatever username it sent.
            session.username = identity.username
        else:
            username = session.username or ""
            password = session.password or ""
            if not username or not password:
                self._reject(
                    "no_credentials", session.client_id, "no username/password"
                )
                return False
            identity = await asyncio.to_thread(
                self._authority.authenticate, username, password
            )
            if identity is None:
                self._reject(
                    "bad_credentials",
                    session.client_id,
                    f"login as {username!r} failed",
                )
                return False
        username = identity.username
        owner = self._id_owners.setdefault(session.client_id or "", username)
        if owner != username:
            self._reject(
                "client_id_taken",
                session.client_id,
                f"{username!r} used the client id of {owner!r}",
            )
            return False
        will_topic = session.will_topic if session.will_flag else None
        if will_topic and not may_publish(identity, will_topic):
            self._reject(
                "will_denied", session.client_id, f"last will on {will_topic!r}"
            )
            return False
        if session.client_id is not None:
            self._identities[session.client_id] = identity
        return True

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        """Allow a publish or subscribe only inside the client's own topics."""
        if session is None or topic is None or session.client_id is None:
            return False
        identity = self._identities.get(session.client_id)
        if identity is None or identity.username != session.username:
            return False
        if action is Action.RECEIVE:
            # Deliveries follow subscriptions, which were checked already.
            return True
        # is_active answers from memory except every few seconds per client.
        if not self._authority.is_active(identity):
            self._reject("revoked", session.client_id, f"{identity.username} revoked")
            return False
        if action is Action.PUBLISH:
            allowed = may_publish(identity, topic)
        else:
            allowed = may_subscribe(identity, topic)
        if not allowed:
            what = "publish" if action is Action.PUBLISH else "subscribe"
            self._reject(
                f"{what}_denied", session.client_id, f"{what} on {topic!r} denied"
            )
        return allowed
