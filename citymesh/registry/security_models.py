"""Tables of identities: users, API keys and their grants, gateway credentials, audit.

Secrets are never stored: keys, enrolment tokens and gateway passwords are kept
as argon2 hashes, and a gateway password also as the PBKDF2 hash that
Mosquitto's password file needs.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from citymesh.registry.models import Base


class UserRow(Base):
    """A person or program of a tenant that holds API keys."""

    __tablename__ = "users"
    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    user: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_ms: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (ForeignKeyConstraint(["tenant"], ["tenants.tenant"]),)


class ApiKeyRow(Base):
    """An API key: its public id, argon2 hash, tenant and scopes."""

    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str | None] = mapped_column(
        String(63), ForeignKey("tenants.tenant"), nullable=True
    )
    """The one tenant the key acts for; NULL for a platform operator's key."""
    user: Mapped[str | None] = mapped_column(String(63), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    scopes: Mapped[str] = mapped_column(String(100))
    """Space-separated scopes: read, write, command, admin."""
    created_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class KeyGrantRow(Base):
    """A per-sensor or per-actuator privilege that narrows what a key reaches."""

    __tablename__ = "key_grants"
    key_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("api_keys.key_id"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    """`sensor` (a glob of series names) or `actuator` (a glob of targets)."""
    pattern: Mapped[str] = mapped_column(String(320), primary_key=True)


class GatewayCredentialRow(Base):
    """The MQTT credentials of an enrolled gateway."""

    __tablename__ = "gateway_credentials"
    tenant: Mapped[str] = mapped_column(
        String(63), ForeignKey("tenants.tenant"), primary_key=True
    )
    gateway: Mapped[str] = mapped_column(String(63), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """argon2 hash; NULL until the gateway redeemed its enrolment token."""
    mosquitto_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The same password as PBKDF2-SHA512 in Mosquitto's `$7$` format."""
    created_ms: Mapped[int] = mapped_column(BigInteger)
    enrolled_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class GatewayCertificateRow(Base):
    """A client certificate the platform CA issued to a gateway, by serial."""

    __tablename__ = "gateway_certificates"
    serial: Mapped[str] = mapped_column(String(40), primary_key=True)
    """The serial number in hexadecimal; up to 159 bits, too large for BIGINT."""
    tenant: Mapped[str] = mapped_column(String(63))
    gateway: Mapped[str] = mapped_column(String(63))
    issued_ms: Mapped[int] = mapped_column(BigInteger)
    not_after_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "gateway"],
            ["gateway_credentials.tenant", "gateway_credentials.gateway"],
        ),
    )


class EnrolmentTokenRow(Base):
    """A one-time token that lets one gateway fetch its credentials."""

    __tablename__ = "enrolment_tokens"
    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str] = mapped_column(String(63))
    gateway: Mapped[str] = mapped_column(String(63))
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    used_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "gateway"],
            ["gateway_credentials.tenant", "gateway_credentials.gateway"],
        ),
    )


class AuditRow(Base):
    """One actuator command: who sent it, what, when and with what result."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user: Mapped[str | None] = mapped_column(String(63), nullable=True)
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    gateway: Mapped[str] = mapped_column(String(63))
    target: Mapped[str] = mapped_column(String(200))
    command: Mapped[str] = mapped_column(String(63))
    args: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    result: Mapped[str] = mapped_column(String(16))
    """ok, failed, timeout, unavailable or denied."""
    detail: Mapped[str] = mapped_column(Text, default="")
