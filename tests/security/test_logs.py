"""No key, token or password ever reaches the logs, even at DEBUG."""

from __future__ import annotations

import logging
import uuid

import aiomqtt
import httpx
import pytest

from citymesh.protocol.topics import Channel, topic_for
from tests.conftest import RunningServer


async def _login(server: RunningServer, username: str, password: str) -> None:
    async with aiomqtt.Client(
        server.broker.host,
        server.broker.port,
        identifier=f"log-{uuid.uuid4().hex[:6]}",
        username=username,
        password=password,
    ) as client:
        await client.publish(
            topic_for(server.tenant, "gw-log", Channel.STATUS), b"{}", qos=1
        )


def test_logs_contain_no_secret(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    base = f"{server.http_url}/api/v1"
    admin = f"{base}/admin/tenants/{server.tenant}"
    secrets = [server.admin_key]

    issued = httpx.post(
        f"{admin}/keys", json={"scopes": ["read", "admin"]}, headers=server.headers
    ).json()
    secrets.append(issued["key"])
    token = httpx.post(
        f"{admin}/gateways", json={"gateway": "gw-log"}, headers=server.headers
    ).json()["token"]
    secrets.append(token)
    login = httpx.post(f"{base}/enrol", json={"token": token}).json()
    secrets.append(login["password"])
    wrong_key = issued["key"][:-4] + "abcd"
    wrong_password = login["password"][:-4] + "abcd"
    secrets += [wrong_key, wrong_password]

    assert httpx.get(f"{admin}/keys", headers={"X-API-Key": issued["key"]}).is_success
    assert (
        httpx.get(f"{base}/sensors", headers={"X-API-Key": wrong_key}).status_code
        == 401
    )
    assert httpx.post(f"{base}/enrol", json={"token": token}).status_code == 404
    server.call(_login(server, login["username"], login["password"]))
    with pytest.raises(aiomqtt.MqttError):
        server.call(_login(server, login["username"], wrong_password))

    text = caplog.text + "\n".join(repr(r.args) for r in caplog.records)
    assert len(caplog.records) > 10
    for secret in secrets:
        # Keys and tokens are `<prefix>_<id>_<secret>`; the id may be logged,
        # the random part never. Passwords are random throughout.
        prefixed = secret.startswith(("cmk_", "cme_"))
        tail = secret.split("_", 2)[2] if prefixed else secret
        assert len(tail) >= 16, secret
        assert tail not in text
