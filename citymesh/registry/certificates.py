"""Gateway client certificates in the registry and the tenants that require them.

A certificate counts as revoked when its gateway is revoked, or when it was
revoked on its own, which a new enrolment of the gateway does to every
certificate issued before it (Identities.redeem). Brokers learn this from the registry
(the embedded broker) or from the CRL written from `revoked()` (Mosquitto).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from citymesh.errors import NotFoundError
from citymesh.registry.models import TenantRow
from citymesh.registry.security_models import (
    GatewayCertificateRow,
    GatewayCredentialRow,
)
from citymesh.registry.tables import RegistryTables

logger = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _revoked_at(
    cert: GatewayCertificateRow, credential: GatewayCredentialRow | None
) -> int | None:
    """Return when `cert` stopped being valid, or None while it is valid."""
    if cert.revoked_ms is not None:
        return cert.revoked_ms
    if credential is None:
        return cert.issued_ms
    return credential.revoked_ms


class GatewayCertificates(RegistryTables):
    """Records issued gateway certificates and checks whether one is valid."""

    def set_require_mtls(self, tenant: str, required: bool) -> None:
        """Make a tenant's gateways log in with client certificates, or not."""

        def work(session: Session) -> None:
            row = session.get(TenantRow, tenant)
            if row is None:
                raise NotFoundError(f"tenant {tenant!r} not found")
            row.require_mtls = required

        self._write(work)
        logger.info("tenant %s requires mutual TLS: %s", tenant, required)

    def requires_mtls(self, tenant: str) -> bool:
        """Tell whether a tenant's gateways must log in with a client certificate."""
        row = self._read(lambda s: s.get(TenantRow, tenant))
        return row is not None and row.require_mtls

    def mtls_tenants(self) -> frozenset[str]:
        """Return the tenants whose gateways must use client certificates."""
        return frozenset(
            self._read(
                lambda s: s.scalars(
                    select(TenantRow.tenant).where(TenantRow.require_mtls.is_(True))
                ).all()
            )
        )

    def record(self, tenant: str, gateway: str, serial: int, not_after_ms: int) -> None:
        """Record a certificate issued to an enrolled gateway."""

        def work(session: Session) -> None:
            if session.get(GatewayCredentialRow, (tenant, gateway)) is None:
                raise NotFoundError(f"gateway {tenant}/{gateway} is not enrolled")
            session.add(
                GatewayCertificateRow(
                    serial=f"{serial:x}",
                    tenant=tenant,
                    gateway=gateway,
                    issued_ms=_now_ms(),
                    not_after_ms=not_after_ms,
                )
            )

        self._write(work)

    def is_valid(self, tenant: str, gateway: str, serial: int) -> bool:
        """Tell whether a certificate is the gateway's, unexpired and unrevoked."""

        def work(session: Session) -> bool:
            cert = session.get(GatewayCertificateRow, f"{serial:x}")
            if cert is None or (cert.tenant, cert.gateway) != (tenant, gateway):
                return False
            if cert.not_after_ms < _now_ms():
                return False
            credential = session.get(GatewayCredentialRow, (tenant, gateway))
            return _revoked_at(cert, credential) is None

        return self._read(work)

    def revoked(self) -> list[tuple[int, int]]:
        """Return (serial, revoked_ms) of every revoked, not yet expired certificate."""

        def work(session: Session) -> list[tuple[int, int]]:
            now = _now_ms()
            rows = session.execute(
                select(GatewayCertificateRow, GatewayCredentialRow)
                .outerjoin(
                    GatewayCredentialRow,
                    (GatewayCredentialRow.tenant == GatewayCertificateRow.tenant)
                    & (GatewayCredentialRow.gateway == GatewayCertificateRow.gateway),
                )
                .where(GatewayCertificateRow.not_after_ms >= now)
                .order_by(GatewayCertificateRow.serial)
            ).all()
            revoked = []
            for cert, credential in rows:
                at = _revoked_at(cert, credential)
                if at is not None:
                    revoked.append((int(cert.serial, 16), at))
            return revoked

        return self._read(work)
