"""Two tenants with gateways, sensors, an actuator and keys of every scope."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from citymesh.protocol.messages import (
    Birth,
    DeviceInfo,
    ReadingsBatch,
    SensorInfo,
    SeriesPoints,
    encode,
)
from citymesh.protocol.topics import Channel, topic_for
from citymesh.registry.access import Scope
from citymesh.server.settings import CollectorSettings
from tests.conftest import RunningServer, _start, server_settings

GATEWAY = "gw-1"
SITE = "hq"
DEVICES = ("room-1", "room-2")
ACTUATOR = "valve-1"
NOW_MS = int(time.time() * 1000) - 3_600_000


@dataclass(frozen=True)
class Key:
    """An API key of the fleet and what it was issued with."""

    label: str
    tenant: str | None
    token: str
    scopes: frozenset[Scope]
    sensors: tuple[str, ...] = ()
    actuators: tuple[str, ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        """Return the headers that send this key."""
        return {"X-API-Key": self.token} if self.token else {}


@dataclass
class Fleet:
    """The running data centre and the identities of both tenants."""

    server: RunningServer
    tenants: tuple[str, str]
    keys: list[Key] = field(default_factory=list)
    public_series: str = ""

    def series(self, tenant: str, device: str) -> str:
        """Return the series name of a device's CO2 sensor."""
        return f"{tenant}.{SITE}.{GATEWAY}.{device}.co2"

    def all_series(self) -> set[str]:
        """Return every series of both tenants."""
        return {self.series(t, d) for t in self.tenants for d in DEVICES}

    def readable(self, key: Key) -> set[str]:
        """Return the series a key should read: its grants plus public data."""
        allowed = {self.public_series}
        if Scope.READ in key.scopes:
            for name in self.all_series():
                if name.split(".")[0] != key.tenant:
                    continue
                if not key.sensors or any(
                    name.startswith(p.rstrip("*")) for p in key.sensors
                ):
                    allowed.add(name)
        return allowed


def batch(tenant: str, seq: int, value: float, ts: int = NOW_MS) -> ReadingsBatch:
    """Return a readings batch of both devices of a tenant's gateway."""
    return ReadingsBatch(
        v=1,
        tenant=tenant,
        gateway=GATEWAY,
        site=SITE,
        seq=seq,
        sent_ms=ts,
        series=[
            SeriesPoints(device=d, quantity="co2", points=[(ts, value)])
            for d in DEVICES
        ],
    )


async def answer_commands(address: tuple[str, int], login: tuple[str, str]) -> None:
    """Act as a gateway that responds ok to every command on its topic."""
    username, password = login
    tenant, gateway = username.split(".")
    async with aiomqtt.Client(
        address[0],
        address[1],
        identifier=f"responder-{uuid.uuid4().hex[:6]}",
        username=username,
        password=password,
    ) as client:
        await client.subscribe(topic_for(tenant, gateway, Channel.COMMANDS), qos=1)
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            command = json.loads(message.payload)
            response = {"v": 1, "id": command["id"], "ok": True, "result": {}}
            await client.publish(
                topic_for(tenant, gateway, Channel.RESPONSES),
                json.dumps(response).encode(),
                qos=1,
            )


def start_fleet(tmp_path: Path, postgres_url: str) -> Iterator[Fleet]:
    """Start a data centre on PostgreSQL and populate two tenants."""
    uid = uuid.uuid4().hex[:8]
    settings = server_settings(tmp_path, f"x{uid}").model_copy(
        update={
            "registry_url": postgres_url,
            "collector": CollectorSettings(
                client_id=f"collector-{uid}", tenant="+", batch_max_delay_ms=20
            ),
        }
    )
    server, shutdown = _start(settings, f"x{uid}")
    tenants = (f"a{uid}", f"b{uid}")
    fleet = Fleet(server, tenants)
    identities = server.identities
    tasks = []
    try:
        for tenant in tenants:
            identities.create_tenant(tenant)
            identities.add_actuator(tenant, GATEWAY, ACTUATOR)
            birth = Birth(
                v=1,
                tenant=tenant,
                gateway=GATEWAY,
                site=SITE,
                boot_ms=NOW_MS,
                devices=[
                    DeviceInfo(device=d, sensors=[SensorInfo(quantity="co2")])
                    for d in DEVICES
                ],
            )
            server.publish_raw(
                topic_for(tenant, GATEWAY, Channel.BIRTH), [encode(birth)]
            )
            server.publish(batch(tenant, 1, 400.0))
            login = server.gateway_login(tenant, GATEWAY)
            address = (server.broker.host, server.broker.port)
            tasks.append(server.call(_spawn(answer_commands(address, login))))
            for label, scopes, sensors, actuators in (
                ("read", {Scope.READ}, (), ()),
                ("write", {Scope.WRITE}, (), ()),
                ("command", {Scope.COMMAND}, (), ()),
                ("admin", {Scope.ADMIN}, (), ()),
                (
                    "read-room-1",
                    {Scope.READ},
                    (f"{tenant}.{SITE}.{GATEWAY}.room-1.*",),
                    (),
                ),
                (
                    "command-valve",
                    {Scope.COMMAND},
                    (),
                    (f"{tenant}.{GATEWAY}.{ACTUATOR}",),
                ),
            ):
                issued = identities.api_keys.issue_key(
                    tenant, scopes, label, sensors=sensors, actuators=actuators
                )
                fleet.keys.append(
                    Key(
                        f"{tenant[0]}-{label}",
                        tenant,
                        issued.token,
                        frozenset(scopes),
                        sensors,
                        actuators,
                    )
                )
        server.wait_stored(accepted=2)
        fleet.public_series = fleet.series(tenants[1], "room-2")
        server.wait_for(lambda: _registered(fleet))
        identities.set_sensor_public(fleet.public_series, True)
        fleet.keys.append(Key("anonymous", None, "", frozenset({Scope.READ})))
        yield fleet
    finally:
        for task in tasks:
            server.loop.call_soon_threadsafe(task.cancel)
        shutdown()


async def _spawn(coro: object) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]


def _registered(fleet: Fleet) -> bool:
    registry = fleet.server.centre.registry
    assert registry is not None
    return registry.sensor_step(fleet.public_series) is not None
