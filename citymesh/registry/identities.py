"""Tenants' identities: public flags, users, API keys, gateway credentials, audit.

The methods on users and API keys pass each call on to
citymesh.registry.api_keys, which also caches verified keys.

Every method is synchronous and thread-safe. Lookups made on every request or
MQTT message (public data, gateway state) are answered from memory for
CACHE_TTL_S; changes made through this object take effect at once, changes
made by another process (the admin CLI) within CACHE_TTL_S.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from citymesh.errors import NotFoundError
from citymesh.protocol.names import check_identifier
from citymesh.registry.access import PublicData
from citymesh.registry.api_keys import ApiKeys
from citymesh.registry.certificates import GatewayCertificates
from citymesh.registry.models import ActuatorRow, SensorRow, TenantRow
from citymesh.registry.secrets import (
    ENROLMENT_PREFIX,
    SecretVerifier,
    hash_secret,
    issue,
    mosquitto_hash,
    new_secret,
    split_token,
)
from citymesh.registry.security_models import (
    AuditRow,
    EnrolmentTokenRow,
    GatewayCertificateRow,
    GatewayCredentialRow,
)
from citymesh.registry.tables import RegistryTables
from citymesh.transport.broker_auth import gateway_username

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long public flags and gateway states are answered from memory.
CACHE_TTL_S = 2.0
# An enrolment token not redeemed within this time expires.
DEFAULT_TOKEN_TTL_S = 24 * 3600


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GatewayState(StrEnum):
    """Where a gateway stands in enrolment."""

    ACTIVE = "active"
    PENDING = "pending"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class GatewayCredentials:
    """What an enrolled gateway logs in with; the password is shown once."""

    tenant: str
    gateway: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One actuator command as recorded in the audit log."""

    at_ms: int
    key_id: str | None
    user: str | None
    tenant: str
    gateway: str
    target: str
    command: str
    args: dict[str, Any]
    result: str
    detail: str


class _Expiring:
    """A value recomputed when older than CACHE_TTL_S or when cleared."""

    def __init__(self) -> None:
        self._values: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
        if hit is not None and now - hit[0] < CACHE_TTL_S:
            value: T = hit[1]
            return value
        value = compute()
        with self._lock:
            self._values[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class Identities(RegistryTables):
    """Users, keys, gateway credentials and the audit log of one registry."""

    def __init__(self, sessions: sessionmaker[Session], lock: threading.Lock) -> None:
        super().__init__(sessions, lock)
        self._verifier = SecretVerifier()
        self.api_keys = ApiKeys(sessions, lock, self._verifier)
        self._public = _Expiring()
        self._gateways = _Expiring()
        self.certificates = GatewayCertificates(sessions, lock)

    # Tenants and public data

    def create_tenant(self, tenant: str, name: str = "", public: bool = False) -> None:
        """Create a tenant, or update the name and public flag of an existing one."""
        check_identifier(tenant, "tenant")

        def work(session: Session) -> None:
            row = session.get(TenantRow, tenant)
            if row is None:
                session.add(
                    TenantRow(tenant=tenant, name=name or tenant, public=public)
                )
            else:
                row.name = name or row.name
                row.public = public

        self._write(work)
        self._public.clear()
        logger.info("tenant %s saved (public: %s)", tenant, public)

    def tenant_exists(self, tenant: str) -> bool:
        """Tell whether a tenant exists."""
        return self._read(lambda s: s.get(TenantRow, tenant) is not None)

    def set_tenant_public(self, tenant: str, public: bool) -> None:
        """Open a tenant's sensor data to everyone, or close it again."""

        def work(session: Session) -> None:
            row = session.get(TenantRow, tenant)
            if row is None:
                raise NotFoundError(f"tenant {tenant!r} not found")
            row.public = public

        self._write(work)
        self._public.clear()
        logger.info("tenant %s public: %s", tenant, public)

    def set_sensor_public(self, series: str, public: bool) -> str:
        """Open one sensor's series to everyone, or close it; return its tenant."""

        def work(session: Session) -> str:
            row = session.get(SensorRow, series)
            if row is None:
                raise NotFoundError(f"sensor {series!r} not found")
            row.public = public
            return row.tenant

        tenant = self._write(work)
        self._public.clear()
        logger.info("sensor %s public: %s", series, public)
        return tenant

    def public_data(self) -> PublicData:
        """Return the tenants and sensors that anyone may read."""

        def load() -> PublicData:
            def work(session: Session) -> PublicData:
                tenants = session.scalars(
                    select(TenantRow.tenant).where(TenantRow.public.is_(True))
                ).all()
                series = session.scalars(
                    select(SensorRow.series).where(SensorRow.public.is_(True))
                ).all()
                return PublicData(frozenset(tenants), frozenset(series))

            return self._read(work)

        return self._public.get("public", load)

    # Gateways

    def add_gateway(
        self, tenant: str, gateway: str, token_ttl_s: float = DEFAULT_TOKEN_TTL_S
    ) -> str:
        """Allow a gateway to enrol; return its one-time enrolment token."""
        check_identifier(gateway, "gateway")
        secret = issue(ENROLMENT_PREFIX)

        def work(session: Session) -> None:
            if session.get(TenantRow, tenant) is None:
                raise NotFoundError(f"tenant {tenant!r} not found")
            if session.get(GatewayCredentialRow, (tenant, gateway)) is None:
                session.add(
                    GatewayCredentialRow(
                        tenant=tenant, gateway=gateway, created_ms=_now_ms()
                    )
                )
                session.flush()
            session.add(
                EnrolmentTokenRow(
                    token_id=secret.id,
                    secret_hash=secret.secret_hash,
                    tenant=tenant,
                    gateway=gateway,
                    expires_ms=_now_ms() + int(token_ttl_s * 1000),
                )
            )

        self._write(work)
        logger.info("enrolment token %s issued for %s/%s", secret.id, tenant, gateway)
        return secret.token

    def redeem(self, token: str) -> GatewayCredentials:
        """Exchange a one-time enrolment token for the gateway's MQTT credentials."""
        parts = split_token(token, ENROLMENT_PREFIX)
        invalid = NotFoundError("enrolment token invalid, used or expired")
        if parts is None:
            raise invalid
        token_id, secret = parts
        row = self._read(lambda s: s.get(EnrolmentTokenRow, token_id))
        if row is None or row.used_ms is not None or row.expires_ms < _now_ms():
            raise invalid
        if not self._verifier.verify(f"token {token_id}", secret, row.secret_hash):
            raise invalid
        password = new_secret()
        argon2_hash = hash_secret(password)
        pbkdf2_hash = mosquitto_hash(password)

        def work(session: Session) -> tuple[str, str]:
            token_row = session.get(EnrolmentTokenRow, token_id)
            if token_row is None or token_row.used_ms is not None:
                raise invalid
            token_row.used_ms = _now_ms()
            credential = session.get(
                GatewayCredentialRow, (token_row.tenant, token_row.gateway)
            )
            if credential is None:
                raise invalid
            credential.password_hash = argon2_hash
            credential.mosquitto_hash = pbkdf2_hash
            credential.enrolled_ms = _now_ms()
            credential.revoked_ms = None
            # A new enrolment replaces every certificate issued before it.
            for certificate in session.scalars(
                select(GatewayCertificateRow).where(
                    GatewayCertificateRow.tenant == token_row.tenant,
                    GatewayCertificateRow.gateway == token_row.gateway,
                    GatewayCertificateRow.revoked_ms.is_(None),
                )
            ):
                certificate.revoked_ms = credential.enrolled_ms
            return token_row.tenant, token_row.gateway

        tenant, gateway = self._write(work)
        self._gateways.clear()
        logger.info("gateway %s/%s enrolled", tenant, gateway)
        return GatewayCredentials(
            tenant, gateway, gateway_username(tenant, gateway), password
        )

    def enrol(self, tenant: str, gateway: str) -> GatewayCredentials:
        """Issue and redeem a token at once, for gateways run by the data centre."""
        return self.redeem(self.add_gateway(tenant, gateway))

    def revoke_gateway(self, tenant: str, gateway: str) -> None:
        """Cut a gateway off: its logins and messages are rejected from now on."""

        def work(session: Session) -> None:
            row = session.get(GatewayCredentialRow, (tenant, gateway))
            if row is None:
                raise NotFoundError(f"gateway {tenant}/{gateway} is not enrolled")
            row.revoked_ms = _now_ms()
            for token in session.scalars(
                select(EnrolmentTokenRow).where(
                    EnrolmentTokenRow.tenant == tenant,
                    EnrolmentTokenRow.gateway == gateway,
                    EnrolmentTokenRow.used_ms.is_(None),
                )
            ):
                token.used_ms = row.revoked_ms

        self._write(work)
        self._gateways.clear()
        logger.info("gateway %s/%s revoked", tenant, gateway)

    def gateway_state(self, tenant: str, gateway: str) -> GatewayState:
        """Return whether a gateway is enrolled, pending, revoked or unknown."""

        def load() -> GatewayState:
            row = self._read(lambda s: s.get(GatewayCredentialRow, (tenant, gateway)))
            if row is None:
                return GatewayState.UNKNOWN
            if row.revoked_ms is not None:
                return GatewayState.REVOKED
            if row.password_hash is None:
                return GatewayState.PENDING
            return GatewayState.ACTIVE

        return self._gateways.get((tenant, gateway), load)

    def verify_gateway(self, tenant: str, gateway: str, password: str) -> bool:
        """Tell whether the password is the current one of an active gateway."""
        row = self._read(lambda s: s.get(GatewayCredentialRow, (tenant, gateway)))
        if row is None or row.revoked_ms is not None or row.password_hash is None:
            return False
        return self._verifier.verify(
            f"gateway {tenant}/{gateway}", password, row.password_hash
        )

    def active_gateways(self) -> list[tuple[str, str, str]]:
        """Return (tenant, gateway, Mosquitto hash) of every active gateway."""

        def work(session: Session) -> list[tuple[str, str, str]]:
            rows = session.scalars(
                select(GatewayCredentialRow)
                .where(GatewayCredentialRow.revoked_ms.is_(None))
                .order_by(GatewayCredentialRow.tenant, GatewayCredentialRow.gateway)
            ).all()
            return [
                (r.tenant, r.gateway, r.mosquitto_hash)
                for r in rows
                if r.mosquitto_hash is not None
            ]

        return self._read(work)

    # Actuators and the audit log

    def add_actuator(
        self, tenant: str, gateway: str, actuator: str, name: str = ""
    ) -> None:
        """Register an actuator behind a gateway."""
        check_identifier(actuator, "actuator")
        check_identifier(gateway, "gateway")

        def work(session: Session) -> None:
            if session.get(TenantRow, tenant) is None:
                raise NotFoundError(f"tenant {tenant!r} not found")
            if session.get(ActuatorRow, (tenant, gateway, actuator)) is None:
                session.add(
                    ActuatorRow(
                        tenant=tenant, gateway=gateway, actuator=actuator, name=name
                    )
                )

        self._write(work)

    def record_command(self, entry: AuditEntry) -> None:
        """Append one actuator command to the audit log."""

        def work(session: Session) -> None:
            session.add(
                AuditRow(
                    at_ms=entry.at_ms,
                    key_id=entry.key_id,
                    user=entry.user,
                    tenant=entry.tenant,
                    gateway=entry.gateway,
                    target=entry.target,
                    command=entry.command,
                    args=entry.args,
                    result=entry.result,
                    detail=entry.detail[:2000],
                )
            )

        self._write(work)

    def audit_log(
        self, tenant: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Return the newest audit entries of a tenant, or of all, newest first."""

        def work(session: Session) -> list[AuditEntry]:
            statement = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if tenant is not None:
                statement = statement.where(AuditRow.tenant == tenant)
            return [
                AuditEntry(
                    at_ms=r.at_ms,
                    key_id=r.key_id,
                    user=r.user,
                    tenant=r.tenant,
                    gateway=r.gateway,
                    target=r.target,
                    command=r.command,
                    args=dict(r.args or {}),
                    result=r.result,
                    detail=r.detail,
                )
                for r in session.scalars(statement)
            ]

        return self._read(work)
