"""Commands travel from the REST API over MQTT to a gateway and back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from citymesh.gateway.runner import run_gateway
from citymesh.gateway.settings import GatewaySettings, ReplaySettings
from citymesh.registry.models import GatewayRow
from tests.conftest import RunningServer


def _start_gateway(running: RunningServer, tmp_path: Path) -> asyncio.Event:
    settings = GatewaySettings(
        tenant=running.tenant,
        site="lab",
        gateway="gw-cmd",
        data_dir=tmp_path / "gateway",
        mqtt=running.gateway_mqtt("gw-cmd"),
        replay=ReplaySettings(sources=["traffic"], speed=60, timestamps="now"),
    )

    async def start() -> asyncio.Event:
        agent_stop = asyncio.Event()
        asyncio.get_running_loop().create_task(run_gateway(settings, agent_stop))
        return agent_stop

    stop = running.call(start())
    collector = running.centre.collector
    assert collector is not None
    running.wait_for(lambda: collector.stats.messages_received >= 1)
    return stop


def test_command_ping_round_trip(server: RunningServer, tmp_path: Path) -> None:
    stop = _start_gateway(server, tmp_path)
    url = f"{server.http_url}/api/v1/gateways/{server.tenant}/gw-cmd/commands"
    try:
        response = httpx.post(
            url,
            json={"command": "ping", "args": {"echo": "hi"}},
            headers=server.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["ok"] is True
        assert body["result"] == {"pong": True, "echo": "hi"}

        status = httpx.post(
            url, json={"command": "status"}, headers=server.headers
        ).json()
        assert status["ok"] is True
        assert status["result"]["gateway"] == "gw-cmd"
        assert status["result"]["online"] is True

        unknown = httpx.post(
            url, json={"command": "reboot"}, headers=server.headers
        ).json()
        assert unknown["ok"] is False
        assert "unknown command 'reboot'" in unknown["error"]
        assert "ping" in unknown["error"]
    finally:
        server.loop.call_soon_threadsafe(stop.set)


def test_command_unknown_gateway_is_404(server: RunningServer) -> None:
    url = f"{server.http_url}/api/v1/gateways/{server.tenant}/nobody/commands"
    response = httpx.post(url, json={"command": "ping"}, headers=server.headers)
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]


def test_command_offline_gateway_times_out(
    server: RunningServer, tmp_path: Path
) -> None:
    stop = _start_gateway(server, tmp_path)
    server.loop.call_soon_threadsafe(stop.set)
    collector = server.centre.collector
    assert collector is not None
    url = f"{server.http_url}/api/v1/gateways/{server.tenant}/gw-cmd/commands"
    registry = server.centre.registry
    assert registry is not None

    def offline() -> bool:
        rows = registry.list_rows(GatewayRow, tenant=server.tenant, gateway="gw-cmd")
        return bool(rows) and not rows[0].online

    # Once the collector has seen the clean stop, no gateway will respond.
    server.wait_for(offline)
    response = httpx.post(
        url,
        json={"command": "ping", "timeout_s": 0.5},
        headers=server.headers,
        timeout=10,
    )
    assert response.status_code == 504
    assert "did not answer 'ping' within 0.5 s" in response.json()["detail"]


def test_command_invalid_name_is_422(server: RunningServer) -> None:
    url = f"{server.http_url}/api/v1/gateways/{server.tenant}/gw/commands"
    response = httpx.post(
        url, json={"command": "no spaces allowed"}, headers=server.headers
    )
    assert response.status_code == 422
