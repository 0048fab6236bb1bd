"""Revoked keys stop at once; revoked gateways at their next MQTT connection.

A key revoked by another process, such as the admin CLI, stops within the
key cache's CACHE_TTL_S.
"""

from __future__ import annotations

import time
import uuid

import aiomqtt
import httpx
import pytest

from citymesh.protocol.topics import Channel, topic_for
from citymesh.registry import api_keys
from citymesh.registry.access import Scope
from citymesh.registry.store import Registry
from tests.conftest import RunningServer
from tests.security.fleet import batch


async def _connect_and_publish(
    server: RunningServer, login: tuple[str, str], topic: str, payload: bytes
) -> None:
    async with aiomqtt.Client(
        server.broker.host,
        server.broker.port,
        identifier=f"rv-{uuid.uuid4().hex[:6]}",
        username=login[0],
        password=login[1],
    ) as client:
        await client.publish(topic, payload, qos=1)


def test_revoked_key_rejected_next_request(server: RunningServer) -> None:
    key = server.identities.api_keys.issue_key(server.tenant, [Scope.READ, Scope.ADMIN])
    url = f"{server.http_url}/api/v1/admin/tenants/{server.tenant}/keys"
    headers = {"Authorization": f"Bearer {key.token}"}
    assert httpx.get(url, headers=headers).status_code == 200

    revoked = httpx.delete(f"{url}/{key.key_id}", headers=server.headers)

    assert revoked.status_code == 204
    after = httpx.get(url, headers=headers)
    assert after.status_code == 401
    assert after.headers["WWW-Authenticate"] == "Bearer"
    sensors = httpx.get(f"{server.http_url}/api/v1/sensors", headers=headers)
    assert sensors.status_code == 401


def _graphite_reads(server: RunningServer, token: str) -> list[int]:
    """Send GET and POST /render and /metrics/find with a key; return the responses."""
    headers = {"X-API-Key": token}
    render = {"target": f"{server.tenant}.a.b.c.d", "from": "-1h"}
    find = {"query": "*"}
    return [
        httpx.get(f"{server.http_url}/render", params=render, headers=headers),
        httpx.post(f"{server.http_url}/render", data=render, headers=headers),
        httpx.get(f"{server.http_url}/metrics/find", params=find, headers=headers),
        httpx.post(f"{server.http_url}/metrics/find", data=find, headers=headers),
    ]


def test_revoked_key_rejected_on_graphite_reads(server: RunningServer) -> None:
    key = server.identities.api_keys.issue_key(server.tenant, [Scope.READ])
    assert [r.status_code for r in _graphite_reads(server, key.token)] == [200] * 4

    server.identities.api_keys.revoke_key(key.key_id)

    after = _graphite_reads(server, key.token)
    assert [r.status_code for r in after] == [401] * 4
    assert {r.headers["WWW-Authenticate"] for r in after} == {"Bearer"}


def test_key_revoked_elsewhere_stops_within_ttl(server: RunningServer) -> None:
    key = server.identities.api_keys.issue_key(server.tenant, [Scope.READ])
    assert [r.status_code for r in _graphite_reads(server, key.token)] == [200] * 4
    # A second Registry on the same database acts as the admin CLI does.
    other = Registry(server.centre.settings.resolved_registry_url())
    try:
        other.identities.api_keys.revoke_key(key.key_id)
    finally:
        other.close()
    revoked_at = time.monotonic()

    codes = [r.status_code for r in _graphite_reads(server, key.token)]
    while codes != [401] * 4 and time.monotonic() - revoked_at < 10:
        time.sleep(0.1)
        codes = [r.status_code for r in _graphite_reads(server, key.token)]

    assert codes == [401] * 4
    # One round of four requests may start just before the cache entry expires.
    assert time.monotonic() - revoked_at < api_keys.CACHE_TTL_S + 2


def test_revoked_gateway_refused_next_connection(server: RunningServer) -> None:
    login = server.gateway_login(server.tenant, "gw-rv")
    topic = topic_for(server.tenant, "gw-rv", Channel.READINGS)
    from citymesh.protocol.messages import encode

    def payload(seq: int) -> bytes:
        return encode(
            batch(server.tenant, seq, 1.0).model_copy(update={"gateway": "gw-rv"})
        )

    server.call(_connect_and_publish(server, login, topic, payload(1)))
    server.wait_stored(accepted=1)

    response = httpx.delete(
        f"{server.http_url}/api/v1/admin/tenants/{server.tenant}/gateways/gw-rv",
        headers=server.headers,
    )

    assert response.status_code == 204
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        server.call(_connect_and_publish(server, login, topic, payload(2)))
    collector = server.centre.collector
    assert collector is not None
    # The collector also rejects the gateway, should its messages arrive via
    # a broker that does not check logins.
    server.call(collector.handle(topic, payload(3)))
    assert collector.stats.rejected["revoked_gateway"] == 1
    assert collector.stats.batches_accepted == 1


def test_unknown_gateway_rejected_and_counted(server: RunningServer) -> None:
    collector = server.centre.collector
    assert collector is not None
    topic = topic_for(server.tenant, "never-enrolled", Channel.READINGS)
    from citymesh.protocol.messages import encode

    data = batch(server.tenant, 1, 1.0).model_copy(update={"gateway": "never-enrolled"})
    server.call(collector.handle(topic, encode(data)))
    assert collector.stats.rejected["unknown_gateway"] == 1
    assert collector.stats.batches_accepted == 0
