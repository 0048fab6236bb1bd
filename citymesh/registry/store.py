"""Reads and writes of the registry, behind SQLAlchemy (SQLite or PostgreSQL)."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, insert, make_url, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from citymesh.errors import ConfigError, MessageRejected, StorageError
from citymesh.protocol.messages import Birth, Status
from citymesh.protocol.names import series_name
from citymesh.protocol.quantities import lookup_quantity
from citymesh.registry import migrate
from citymesh.registry.access import ReadAccess
from citymesh.registry.identities import GatewayState, Identities
from citymesh.registry.models import (
    DeviceRow,
    GatewayRow,
    SensorRow,
    SiteRow,
    TenantRow,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SensorRef:
    """A sensor to make sure of: where it sits and what it measures."""

    tenant: str
    site: str
    gateway: str
    device: str
    quantity: str
    step_s: int = 60

    @property
    def series(self) -> str:
        """Return the dotted series name of this sensor."""
        return series_name(
            self.tenant, self.site, self.gateway, self.device, self.quantity
        )


class Registry:
    """The asset registry; every method is synchronous and thread-safe."""

    def __init__(self, url: str) -> None:
        try:
            self._engine = create_engine(url, future=True)
            migrate.upgrade(self._engine)
        except SQLAlchemyError as exc:
            shown = make_url(url).render_as_string(hide_password=True)
            raise ConfigError(
                f"cannot open the registry database {shown!r}: {exc}; "
                "check registry_url"
            ) from exc
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._lock = threading.Lock()
        self._known_sensors: set[str] = set()
        self._access: ReadAccess | None = None
        self.identities = Identities(self._sessions, self._lock)
        logger.info(
            "registry open at %s", self._engine.url.render_as_string(hide_password=True)
        )

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def _write(self, work: Any) -> None:
        with self._lock, self._sessions.begin() as session:
            try:
                work(session)
            except SQLAlchemyError as exc:
                raise StorageError(f"registry write failed: {exc}") from exc

    @staticmethod
    def _ensure_path(
        session: Session, tenant: str, site: str, gateway: str
    ) -> GatewayRow:
        if session.get(TenantRow, tenant) is None:
            session.add(TenantRow(tenant=tenant, name=tenant))
            session.flush()
        if session.get(SiteRow, (tenant, site)) is None:
            session.add(SiteRow(tenant=tenant, site=site, name=site))
            session.flush()
        row = session.get(GatewayRow, (tenant, gateway))
        if row is None:
            row = GatewayRow(tenant=tenant, gateway=gateway, site=site, status={})
            session.add(row)
            session.flush()
        return row

    def record_birth(self, birth: Birth, received_ms: int) -> None:
        """Register a gateway, its devices and sensors from its birth message."""

        def work(session: Session) -> None:
            row = self._ensure_path(session, birth.tenant, birth.site, birth.gateway)
            row.site = birth.site
            row.online = True
            row.last_seen_ms = received_ms
            row.boot_ms = birth.boot_ms
            row.software = birth.software
            for info in birth.devices:
                device = session.get(
                    DeviceRow, (birth.tenant, birth.gateway, info.device)
                )
                if device is None:
                    device = DeviceRow(
                        tenant=birth.tenant, gateway=birth.gateway, device=info.device
                    )
                    session.add(device)
                device.site = birth.site
                device.name = info.name
                device.latitude = info.latitude
                device.longitude = info.longitude
                session.flush()
                for sensor in info.sensors:
                    ref = SensorRef(
                        birth.tenant,
                        birth.site,
                        birth.gateway,
                        info.device,
                        sensor.quantity,
                        sensor.step_s,
                    )
                    self._upsert_sensor(session, ref)

        self._write(work)
        logger.info(
            "gateway %s/%s registered with %d devices",
            birth.tenant,
            birth.gateway,
            len(birth.devices),
        )

    def _upsert_sensor(self, session: Session, ref: SensorRef) -> None:
        row = session.get(SensorRow, ref.series)
        unit = lookup_quantity(ref.quantity).unit
        if row is None:
            session.add(
                SensorRow(
                    series=ref.series,
                    tenant=ref.tenant,
                    site=ref.site,
                    gateway=ref.gateway,
                    device=ref.device,
                    quantity=ref.quantity,
                    unit=unit,
                    step_s=ref.step_s,
                )
            )
        else:
            row.step_s = ref.step_s
            row.unit = unit
        self._known_sensors.add(ref.series)

    def ensure_sensors(self, refs: Iterable[SensorRef]) -> None:
        """Register sensors first seen in readings (devices that missed a birth).

        Sensors already registered keep their rows. One query per gateway
        finds the registered ones, so a batch of new sensors costs a few
        statements rather than several per sensor.
        """
        missing: dict[str, SensorRef] = {}
        for ref in refs:
            if ref.series not in self._known_sensors:
                missing.setdefault(ref.series, ref)
        if not missing:
            return
        by_gateway: dict[tuple[str, str, str], list[SensorRef]] = {}
        for ref in missing.values():
            by_gateway.setdefault((ref.tenant, ref.site, ref.gateway), []).append(ref)

        def work(session: Session) -> None:
            for (tenant, site, gateway), group in by_gateway.items():
                self._ensure_path(session, tenant, site, gateway)
                devices = set(
                    session.scalars(
                        select(DeviceRow.device).where(
                            DeviceRow.tenant == tenant, DeviceRow.gateway == gateway
                        )
                    )
                )
                sensors = set(
                    session.scalars(
                        select(SensorRow.series).where(
                            SensorRow.tenant == tenant, SensorRow.gateway == gateway
                        )
                    )
                )
                new_devices = {
                    ref.device: {
                        "tenant": tenant,
                        "gateway": gateway,
                        "device": ref.device,
                        "site": site,
                        "name": ref.device,
                    }
                    for ref in group
                    if ref.device not in devices
                }
                # Bulk inserts of plain rows, without an ORM object per row.
                # Devices go first because sensor rows refer to them.
                if new_devices:
                    session.execute(insert(DeviceRow), list(new_devices.values()))
                new_sensors = [
                    {
                        "series": ref.series,
                        "tenant": ref.tenant,
                        "site": ref.site,
                        "gateway": ref.gateway,
                        "device": ref.device,
                        "quantity": ref.quantity,
                        "unit": lookup_quantity(ref.quantity).unit,
                        "step_s": ref.step_s,
                    }
                    for ref in group
                    if ref.series not in sensors
                ]
                if new_sensors:
                    session.execute(insert(SensorRow), new_sensors)

        self._write(work)
        self._known_sensors.update(missing)

    def sensor_step(self, series: str) -> int | None:
        """Return the nominal step of a registered sensor, or None."""
        with self._sessions() as session:
            row = session.get(SensorRow, series)
            return None if row is None else row.step_s

    def record_status(
        self,
        status: Status,
        received_ms: int,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Store a gateway's latest status report and the collector's `extra` fields."""

        def work(session: Session) -> None:
            row = session.get(GatewayRow, (status.tenant, status.gateway))
            if row is None:
                logger.info(
                    "status from unregistered gateway %s/%s ignored until its birth",
                    status.tenant,
                    status.gateway,
                )
                return
            row.online = status.online
            row.last_seen_ms = received_ms
            row.status = {**status.model_dump(mode="json"), **(extra or {})}

        self._write(work)

    def record_death(self, tenant: str, gateway: str, received_ms: int) -> None:
        """Mark a gateway offline after its last will arrived."""

        def work(session: Session) -> None:
            row = session.get(GatewayRow, (tenant, gateway))
            if row is not None:
                row.online = False

        self._write(work)

    def list_rows(self, table: type[Any], **filters: str | None) -> list[Any]:
        """Return rows of a registry table, filtered by equal columns.

        A view made by `scoped` returns only the rows its access may see.
        """
        statement = select(table)
        for column, value in filters.items():
            if value is not None:
                statement = statement.where(getattr(table, column) == value)
        with self._sessions() as session:
            rows = list(session.scalars(statement).all())
        if self._access is None:
            return rows
        return visible_rows(self, self._access, table, rows)

    def scoped(self, access: ReadAccess) -> Registry:
        """Return a view of this registry whose listings obey `access`."""
        view = copy.copy(self)
        view._access = access
        return view

    def check_origin(self, tenant: str, gateway: str) -> MessageRejected | None:
        """Return why messages of a gateway are rejected, or None if it may send."""
        state = self.identities.gateway_state(tenant, gateway)
        if state is GatewayState.ACTIVE:
            return None
        if state is GatewayState.REVOKED:
            return MessageRejected(
                "revoked_gateway", f"gateway {tenant}/{gateway} was revoked"
            )
        if state is GatewayState.PENDING:
            return MessageRejected(
                "unknown_gateway",
                f"gateway {tenant}/{gateway} was added but has not enrolled; run "
                "`citymesh gateway enroll --token <token>` on the gateway",
            )
        return MessageRejected(
            "unknown_gateway",
            f"gateway {tenant}/{gateway} is not registered; add it with "
            "`citymesh admin gateway add`, then run `citymesh gateway enroll` "
            "on the gateway",
        )


def visible_rows(
    registry: Registry, access: ReadAccess, table: type[Any], rows: list[Any]
) -> list[Any]:
    """Keep the rows `access` may see.

    Sensors need read access to their series. Tenants, sites, gateways and
    devices are visible in the caller's own tenant and in public tenants, and
    elsewhere only above a public sensor.
    """
    if table is SensorRow:
        return [r for r in rows if access.can_read(r.series)]
    whole = access.whole_tenants()
    if whole is None:
        return rows
    partial = {r.tenant for r in rows} - whole
    above: set[tuple[str, ...]] = set()
    if partial:
        with registry._sessions() as session:
            sensors = session.scalars(
                select(SensorRow).where(SensorRow.tenant.in_(partial))
            ).all()
        for sensor in sensors:
            if access.can_read(sensor.series):
                above.update(_ancestors(sensor))
    return [r for r in rows if r.tenant in whole or _key(table, r) in above]


def _ancestors(sensor: SensorRow) -> list[tuple[str, ...]]:
    return [
        ("tenant", sensor.tenant),
        ("site", sensor.tenant, sensor.site),
        ("gateway", sensor.tenant, sensor.gateway),
        ("device", sensor.tenant, sensor.gateway, sensor.device),
    ]


def _key(table: type[Any], row: Any) -> tuple[str, ...]:
    if table is TenantRow:
        return ("tenant", row.tenant)
    if table is SiteRow:
        return ("site", row.tenant, row.site)
    if table is GatewayRow:
        return ("gateway", row.tenant, row.gateway)
    if table is DeviceRow:
        return ("device", row.tenant, row.gateway, row.device)
    return ("other", row.tenant)
