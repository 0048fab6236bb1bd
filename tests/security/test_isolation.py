"""The isolation matrix: every caller against every target, over MQTT and HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import aiomqtt
import httpx
import pytest

from citymesh.protocol.messages import encode
from citymesh.protocol.topics import Channel, topic_for
from citymesh.registry.access import Scope
from tests.security.fleet import (
    ACTUATOR,
    GATEWAY,
    NOW_MS,
    Fleet,
    Key,
    batch,
    start_fleet,
)


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> Iterator[Fleet]:
    """Two populated tenants on one data centre whose registry is PostgreSQL."""
    yield from start_fleet(tmp_path_factory.mktemp("fleet"), postgres_url)


def _get(fleet: Fleet, key: Key, path: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{fleet.server.http_url}{path}", params=params, headers=key.headers, timeout=10
    )


async def _publish(
    fleet: Fleet, login: tuple[str, str], topic: str, payload: bytes
) -> None:
    broker = fleet.server.broker
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"pub-{uuid.uuid4().hex[:6]}",
        username=login[0],
        password=login[1],
    ) as client:
        await client.publish(topic, payload, qos=1)


async def _subscribe(fleet: Fleet, login: tuple[str, str], topic: str) -> int:
    broker = fleet.server.broker
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"sub-{uuid.uuid4().hex[:6]}",
        username=login[0],
        password=login[1],
    ) as client:
        result = await client.subscribe(topic, qos=1)
        code = result[0]
        return code if isinstance(code, int) else int(code.value)


def test_mqtt_publish_only_own_topics(fleet: Fleet) -> None:
    server = fleet.server
    store = server.centre.store
    assert store is not None
    ts = NOW_MS + 60_000
    for c, caller in enumerate(fleet.tenants):
        login = server.gateway_login(caller, GATEWAY)
        for t, target in enumerate(fleet.tenants):
            payload = encode(batch(target, 10 + c, 1000.0 + 10 * c + t, ts))
            topic = topic_for(target, GATEWAY, Channel.READINGS)
            server.call(_publish(fleet, login, topic, payload))
    server.wait_stored(accepted=4)
    for c, caller in enumerate(fleet.tenants):
        for t, target in enumerate(fleet.tenants):
            (data,) = store.read([fleet.series(target, "room-1")], ts, ts + 1)
            values = set(data.values.tolist())
            expected = 1000.0 + 10 * c + t
            if caller == target:
                assert expected in values, (caller, target)
            else:
                assert expected not in values, (caller, target)


def test_mqtt_subscribe_only_own_commands(fleet: Fleet) -> None:
    server = fleet.server
    for caller in fleet.tenants:
        login = server.gateway_login(caller, GATEWAY)
        for target in fleet.tenants:
            for topic in (
                topic_for(target, GATEWAY, Channel.COMMANDS),
                topic_for(target, GATEWAY, Channel.READINGS),
                "citymesh/v1/#",
            ):
                granted = server.call(_subscribe(fleet, login, topic)) < 0x80
                own = topic == topic_for(caller, GATEWAY, Channel.COMMANDS)
                assert granted == own, (caller, topic)


def test_rest_read_matrix(fleet: Fleet) -> None:
    for key in fleet.keys:
        allowed = fleet.readable(key)
        may_read = Scope.READ in key.scopes
        for series in fleet.all_series():
            response = _get(
                fleet, key, f"/api/v1/series/{series}/points", **{"from": "-7d"}
            )
            if not may_read:
                assert response.status_code == 403, (key.label, series)
            elif series in allowed:
                assert response.status_code == 200, (key.label, series)
                assert response.json()["points"], (key.label, series)
            else:
                assert response.status_code == 404, (key.label, series)
                # The same response as for a series that does not exist.
                assert response.json()["detail"].endswith(
                    "not found; list series at /api/v1/sensors"
                )
        if not may_read:
            continue
        listed = {s["series"] for s in _get(fleet, key, "/api/v1/sensors").json()}
        assert listed & fleet.all_series() == allowed, key.label


def test_render_wildcards_reveal_nothing(fleet: Fleet) -> None:
    for key in fleet.keys:
        if Scope.READ not in key.scopes:
            continue
        allowed = fleet.readable(key)
        for target in (
            "*.*.*.*.*",
            "*.hq.gw-1.{room-1,room-2}.co2",
            "sumSeries(*.*.*.*.co2)",
        ):
            response = _get(fleet, key, "/render", target=target, **{"from": "-7d"})
            assert response.status_code == 200, (key.label, target)
            names = {s["target"] for s in response.json()}
            if target.startswith("sumSeries"):
                assert len(names) == (1 if allowed else 0)
                continue
            assert names & fleet.all_series() == allowed, (key.label, target)
            assert (
                not names
                - allowed
                - {n for n in names if n.split(".")[0] not in fleet.tenants}
            )


def test_metrics_find_reveals_nothing(fleet: Fleet) -> None:
    for key in fleet.keys:
        if Scope.READ not in key.scopes:
            continue
        allowed = fleet.readable(key)
        tops = {n["id"] for n in _get(fleet, key, "/metrics/find", query="*").json()}
        expected_tenants = {s.split(".")[0] for s in allowed}
        assert tops & set(fleet.tenants) == expected_tenants, key.label
        completed = _get(
            fleet, key, "/metrics/find", query="*.hq.gw-1.*.co", format="completer"
        ).json()
        leaves = {m["path"] for m in completed["metrics"]}
        assert leaves & fleet.all_series() == allowed, key.label


def test_command_matrix_and_audit(fleet: Fleet) -> None:
    server = fleet.server
    for key in fleet.keys:
        for tenant in fleet.tenants:
            for args in ({}, {"actuator": ACTUATOR}):
                target = f"{tenant}.{GATEWAY}" + (f".{ACTUATOR}" if args else "")
                response = httpx.post(
                    f"{server.http_url}/api/v1/gateways/{tenant}/{GATEWAY}/commands",
                    json={"command": "open", "args": args, "timeout_s": 5},
                    headers=key.headers,
                    timeout=15,
                )
                allowed = (
                    Scope.COMMAND in key.scopes
                    and key.tenant == tenant
                    and (not key.actuators or target in key.actuators)
                )
                if key.tenant is None:
                    assert response.status_code == 401, (key.label, target)
                elif allowed:
                    assert response.status_code == 200, (
                        key.label,
                        target,
                        response.text,
                    )
                    assert response.json()["ok"] is True
                else:
                    assert response.status_code == 403, (key.label, target)
    for tenant in fleet.tenants:
        entries = server.identities.audit_log(tenant, limit=1000)
        by_result = {e.result for e in entries}
        assert {"ok", "denied"} <= by_result
        assert all(e.tenant == tenant for e in entries)
        assert any(e.target == f"{tenant}.{GATEWAY}.{ACTUATOR}" for e in entries)
        outsiders = [e for e in entries if e.result == "ok"]
        assert all(
            k.tenant == tenant
            for e in outsiders
            for k in fleet.keys
            if k.token and k.token.split("_")[1] == e.key_id
        )


def test_admin_api_stays_in_tenant(fleet: Fleet) -> None:
    server = fleet.server
    mine, theirs = fleet.tenants
    admin = next(k for k in fleet.keys if k.label == f"{mine[0]}-admin")
    reader = next(k for k in fleet.keys if k.label == f"{mine[0]}-read")
    base = f"{server.http_url}/api/v1/admin"

    own = httpx.get(f"{base}/tenants/{mine}/keys", headers=admin.headers)
    other = httpx.get(f"{base}/tenants/{theirs}/keys", headers=admin.headers)
    no_scope = httpx.get(f"{base}/tenants/{mine}/keys", headers=reader.headers)
    create = httpx.post(
        f"{base}/tenants", json={"tenant": "zzz"}, headers=admin.headers
    )

    assert own.status_code == 200
    assert all("key" not in k for k in own.json())
    assert {k["tenant"] for k in own.json()} == {mine}
    assert other.status_code == 403
    assert no_scope.status_code == 403
    assert create.status_code == 403
