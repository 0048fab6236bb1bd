"""Reads and writes of the registry, behind SQLAlchemy (SQLite or PostgreSQL)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from citymesh.errors import ConfigError, StorageError
from citymesh.protocol.messages import Birth, Status
from citymesh.protocol.names import series_name
from citymesh.protocol.quantities import lookup_quantity
from citymesh.registry.models import (
    Base,
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
            Base.metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise ConfigError(
                f"cannot open the registry database {url!r}: {exc}; check registry.url"
            ) from exc
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._lock = threading.Lock()
        self._known_sensors: set[str] = set()
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
        """Register sensors first seen in readings (devices that missed a birth)."""
        missing = [r for r in refs if r.series not in self._known_sensors]
        if not missing:
            return

        def work(session: Session) -> None:
            for ref in missing:
                self._ensure_path(session, ref.tenant, ref.site, ref.gateway)
                if (
                    session.get(DeviceRow, (ref.tenant, ref.gateway, ref.device))
                    is None
                ):
                    session.add(
                        DeviceRow(
                            tenant=ref.tenant,
                            gateway=ref.gateway,
                            device=ref.device,
                            site=ref.site,
                            name=ref.device,
                        )
                    )
                    session.flush()
                if session.get(SensorRow, ref.series) is None:
                    self._upsert_sensor(session, ref)
                self._known_sensors.add(ref.series)

        self._write(work)

    def sensor_step(self, series: str) -> int | None:
        """Return the nominal step of a registered sensor, or None."""
        with self._sessions() as session:
            row = session.get(SensorRow, series)
            return None if row is None else row.step_s

    def record_status(self, status: Status, received_ms: int) -> None:
        """Store a gateway's latest status report."""

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
            row.status = status.model_dump(mode="json")

        self._write(work)

    def record_death(self, tenant: str, gateway: str, received_ms: int) -> None:
        """Mark a gateway offline after its last will arrived."""

        def work(session: Session) -> None:
            row = session.get(GatewayRow, (tenant, gateway))
            if row is not None:
                row.online = False

        self._write(work)

    def list_rows(self, table: type[Any], **filters: str | None) -> list[Any]:
        """Return rows of a registry table, filtered by equal columns."""
        statement = select(table)
        for column, value in filters.items():
            if value is not None:
                statement = statement.where(getattr(table, column) == value)
        with self._sessions() as session:
            return list(session.scalars(statement).all())
