"""REST API of the registry and the series: /api/v1/..."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field, StringConstraints

from citymesh.api import auth
from citymesh.api.context import ApiContext
from citymesh.errors import CommandTimeout, QueryError, TransportError
from citymesh.protocol.names import ID_PATTERN
from citymesh.protocol.quantities import QUANTITIES
from citymesh.query.aggregation import aggregate_buckets, canonical_aggregation
from citymesh.query.timeparse import parse_time
from citymesh.registry.models import (
    DeviceRow,
    GatewayRow,
    SensorRow,
    SiteRow,
    TenantRow,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["rest"])

# A request without `step` may return at most this many raw points; larger
# ranges must be aggregated, which keeps responses and memory bounded.
MAX_RAW_POINTS = 200_000
# Epoch values at or above this are read as milliseconds, below as seconds
# (10**11 s is the year 5138; 10**11 ms is 1973).
MS_THRESHOLD = 10**11


class Tenant(BaseModel):
    """A tenant."""

    tenant: str
    name: str


class Site(BaseModel):
    """A site of a tenant."""

    tenant: str
    site: str
    name: str


class Gateway(BaseModel):
    """A gateway and its last report."""

    tenant: str
    site: str
    gateway: str
    online: bool
    last_seen: int | None
    boot: int | None
    software: str
    status: dict[str, Any]


class Device(BaseModel):
    """A device behind a gateway."""

    tenant: str
    site: str
    gateway: str
    device: str
    name: str
    latitude: float | None
    longitude: float | None


class LatestPoint(BaseModel):
    """The newest point of a series."""

    timestamp: int
    value: float


class Sensor(BaseModel):
    """A sensor with its quantity, unit and latest value."""

    series: str
    tenant: str
    site: str
    gateway: str
    device: str
    device_name: str
    quantity: str
    label: str
    unit: str
    kind: str
    step_s: int
    latest: LatestPoint | None


class SeriesPoints(BaseModel):
    """Points of one series; values are null in aggregated buckets without data."""

    series: str
    unit: str
    step_s: int | None
    aggregation: str | None
    points: list[tuple[int, float | None]]


def _context(request: Request) -> ApiContext:
    return auth.scoped_context(request)


def parse_time_ms(value: str, now_ms: int, name: str) -> int:
    """Parse an epoch (seconds or ms) or a Graphite time expression into ms."""
    text = value.strip()
    if text.isdigit() and int(text) >= MS_THRESHOLD:
        return int(text)
    try:
        return parse_time(text, now_ms // 1000) * 1000
    except QueryError as exc:
        raise QueryError(f"invalid {name}={value!r}: {exc}") from None


@router.get("/tenants", response_model=list[Tenant], summary="List tenants")
async def list_tenants(request: Request) -> list[Tenant]:
    """Return every tenant."""
    rows = await asyncio.to_thread(_context(request).registry.list_rows, TenantRow)
    return [Tenant(tenant=r.tenant, name=r.name) for r in rows]


@router.get("/sites", response_model=list[Site], summary="List sites")
async def list_sites(request: Request, tenant: str | None = None) -> list[Site]:
    """Return the sites, optionally of one tenant."""
    rows = await asyncio.to_thread(
        _context(request).registry.list_rows, SiteRow, tenant=tenant
    )
    return [Site(tenant=r.tenant, site=r.site, name=r.name) for r in rows]


@router.get("/gateways", response_model=list[Gateway], summary="List gateways")
async def list_gateways(
    request: Request, tenant: str | None = None, site: str | None = None
) -> list[Gateway]:
    """Return the gateways with their online state and last status report."""
    rows = await asyncio.to_thread(
        _context(request).registry.list_rows, GatewayRow, tenant=tenant, site=site
    )
    return [
        Gateway(
            tenant=r.tenant,
            site=r.site,
            gateway=r.gateway,
            online=r.online,
            last_seen=r.last_seen_ms,
            boot=r.boot_ms,
            software=r.software,
            status=dict(r.status or {}),
        )
        for r in rows
    ]


@router.get("/devices", response_model=list[Device], summary="List devices")
async def list_devices(
    request: Request,
    tenant: str | None = None,
    site: str | None = None,
    gateway: str | None = None,
) -> list[Device]:
    """Return the devices, optionally filtered by tenant, site and gateway."""
    rows = await asyncio.to_thread(
        _context(request).registry.list_rows,
        DeviceRow,
        tenant=tenant,
        site=site,
        gateway=gateway,
    )
    return [
        Device(
            tenant=r.tenant,
            site=r.site,
            gateway=r.gateway,
            device=r.device,
            name=r.name,
            latitude=r.latitude,
            longitude=r.longitude,
        )
        for r in rows
    ]


@router.get(
    "/sensors", response_model=list[Sensor], summary="List sensors with latest values"
)
async def list_sensors(
    request: Request,
    tenant: str | None = None,
    site: str | None = None,
    gateway: str | None = None,
    device: str | None = None,
    quantity: str | None = None,
) -> list[Sensor]:
    """Return sensors with quantity, unit and latest value, sorted by series name."""
    context = _context(request)
    registry = context.registry
    rows = await asyncio.to_thread(
        registry.list_rows,
        SensorRow,
        tenant=tenant,
        site=site,
        gateway=gateway,
        device=device,
        quantity=quantity,
    )
    devices = await asyncio.to_thread(registry.list_rows, DeviceRow, tenant=tenant)
    names = {(d.tenant, d.gateway, d.device): d.name for d in devices}
    latest = {
        v.series.name: v
        for v in await asyncio.to_thread(context.store.latest, [r.series for r in rows])
    }
    sensors = []
    for r in sorted(rows, key=lambda row: row.series):
        quantity_info = QUANTITIES.get(r.quantity)
        point = latest.get(r.series)
        sensors.append(
            Sensor(
                series=r.series,
                tenant=r.tenant,
                site=r.site,
                gateway=r.gateway,
                device=r.device,
                device_name=names.get((r.tenant, r.gateway, r.device)) or r.device,
                quantity=r.quantity,
                label=quantity_info.label if quantity_info else r.quantity,
                unit=r.unit,
                kind=quantity_info.kind if quantity_info else "gauge",
                step_s=r.step_s,
                latest=None
                if point is None
                else LatestPoint(timestamp=point.timestamp, value=point.value),
            )
        )
    return sensors


@router.get(
    "/series/{series}/points",
    response_model=SeriesPoints,
    summary="Points of one series over a time range, optionally aggregated",
)
async def series_points(
    request: Request,
    series: str,
    from_: Annotated[
        str,
        Query(
            alias="from",
            description="Start, inclusive: epoch ms or s, or a Graphite form like -24h",
        ),
    ] = "-24h",
    until: Annotated[
        str,
        Query(description="End, exclusive: epoch ms or s, or a Graphite form like now"),
    ] = "now",
    step: Annotated[
        int | None,
        Query(
            ge=1,
            le=366 * 86_400,
            description="Bucket width in seconds; omit for raw points",
        ),
    ] = None,
    agg: Annotated[
        str,
        Query(
            description="Aggregation per bucket: avg, min, max, sum, last, count, ..."
        ),
    ] = "avg",
) -> SeriesPoints:
    """Return raw points, or one aggregated value per `step` seconds."""
    context = _context(request)
    now_ms = time.time_ns() // 1_000_000
    start = parse_time_ms(from_, now_ms, "from")
    end = parse_time_ms(until, now_ms, "until")
    if end <= start:
        raise QueryError(f"until ({until}) must be after from ({from_})")
    func = canonical_aggregation(agg)
    metas = await asyncio.to_thread(context.store.series, [series])
    if not metas:
        raise HTTPException(
            404, f"series {series!r} not found; list series at /api/v1/sensors"
        )
    meta = metas[0]
    if step is None:
        data = await asyncio.to_thread(context.store.read, [series], start, end)
        timestamps, values = data[0].timestamps, data[0].values
        if timestamps.size > MAX_RAW_POINTS:
            raise QueryError(
                f"{timestamps.size} points between from and until exceed the limit of "
                f"{MAX_RAW_POINTS} raw points; pass step (seconds) to aggregate"
            )
        points = list(zip(timestamps.tolist(), values.tolist(), strict=True))
        return SeriesPoints(
            series=series, unit=meta.unit, step_s=None, aggregation=None, points=points
        )
    step_ms = step * 1000
    first = start - start % step_ms
    count = (end - first + step_ms - 1) // step_ms
    if count > MAX_RAW_POINTS:
        raise QueryError(
            f"step={step} gives {count} buckets, above the limit of {MAX_RAW_POINTS}; "
            "use a larger step"
        )
    data = await asyncio.to_thread(context.store.read, [series], first, end)
    buckets = ((data[0].timestamps - first) // step_ms).astype(np.int64)
    aggregated = aggregate_buckets(data[0].values, buckets, int(count), func)
    stamps = first + np.arange(count, dtype=np.int64) * step_ms
    points = [
        (t, None if np.isnan(v) else v)
        for t, v in zip(stamps.tolist(), aggregated.tolist(), strict=True)
    ]
    return SeriesPoints(
        series=series, unit=meta.unit, step_s=step, aggregation=func, points=points
    )


class CommandRequest(BaseModel):
    """A command to send to a gateway."""

    command: Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$")]
    args: dict[str, Any] = Field(default_factory=dict)
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0


class CommandResult(BaseModel):
    """The gateway's response to a command."""

    id: str
    ok: bool
    result: dict[str, Any]
    error: str


@router.post(
    "/gateways/{tenant}/{gateway}/commands",
    response_model=CommandResult,
    summary="Send a command to a gateway and return its answer",
    responses={
        404: {"description": "unknown gateway"},
        503: {"description": "no broker connection"},
        504: {"description": "the gateway did not answer in time"},
    },
)
async def send_command(
    request: Request, tenant: str, gateway: str, body: CommandRequest
) -> CommandResult:
    """Send `body.command` to the gateway over MQTT and wait for its response."""
    context = _context(request)
    collector = await auth.command_sender(
        request, tenant, gateway, body.command, body.args
    )
    if collector is None:
        raise HTTPException(503, "no collector runs in this process to send commands")
    known = await asyncio.to_thread(
        context.registry.list_rows, GatewayRow, tenant=tenant, gateway=gateway
    )
    if not known:
        raise HTTPException(
            404,
            f"gateway {tenant}/{gateway} not found; list gateways at /api/v1/gateways",
        )
    try:
        response = await collector.send_command(
            tenant, gateway, body.command, body.args, body.timeout_s
        )
    except CommandTimeout as exc:
        raise HTTPException(504, str(exc)) from None
    except TransportError as exc:
        raise HTTPException(503, str(exc)) from None
    return CommandResult(
        id=response.id, ok=response.ok, result=response.result, error=response.error
    )


@router.get("/collector/stats", summary="Counters of the collector")
async def collector_stats(request: Request) -> dict[str, Any]:
    """Return the collector's counters, with rejections by reason."""
    auth.require_platform(request)
    collector = _context(request).collector
    if collector is None:
        raise HTTPException(404, "no collector runs in this process")
    return collector.stats.as_dict()
