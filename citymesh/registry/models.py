"""Tables of the registry: tenant > site > gateway > device > sensor."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKeyConstraint, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the registry tables."""


class TenantRow(Base):
    """A customer whose assets are isolated from other tenants."""

    __tablename__ = "tenants"
    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether anyone, without a key, may read every sensor of the tenant."""
    require_mtls: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether the tenant's gateways must log in with a client certificate."""


class SiteRow(Base):
    """A place (building, district) where a tenant runs gateways."""

    __tablename__ = "sites"
    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    __table_args__ = (ForeignKeyConstraint(["tenant"], ["tenants.tenant"]),)


class GatewayRow(Base):
    """A gateway and what it last reported."""

    __tablename__ = "gateways"
    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(63), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    boot_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    software: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    __table_args__ = (
        ForeignKeyConstraint(["tenant", "site"], ["sites.tenant", "sites.site"]),
    )


class DeviceRow(Base):
    """A mesh node or other device behind a gateway."""

    __tablename__ = "devices"
    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(63), primary_key=True)
    device: Mapped[str] = mapped_column(String(63), primary_key=True)
    site: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200), default="")
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "gateway"], ["gateways.tenant", "gateways.gateway"]
        ),
    )


class SensorRow(Base):
    """A sensor of a device; its readings form the series of the same name."""

    __tablename__ = "sensors"
    series: Mapped[str] = mapped_column(String(320), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63))
    site: Mapped[str] = mapped_column(String(63))
    gateway: Mapped[str] = mapped_column(String(63))
    device: Mapped[str] = mapped_column(String(63))
    quantity: Mapped[str] = mapped_column(String(63))
    unit: Mapped[str] = mapped_column(String(31))
    step_s: Mapped[int] = mapped_column(BigInteger, default=60)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether anyone, without a key, may read this sensor's series."""
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "gateway", "device"],
            ["devices.tenant", "devices.gateway", "devices.device"],
        ),
    )


class ActuatorRow(Base):
    """An output behind a gateway that commands may drive (a valve, a relay)."""

    __tablename__ = "actuators"
    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(63), primary_key=True)
    actuator: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    __table_args__ = (ForeignKeyConstraint(["tenant"], ["tenants.tenant"]),)
