"""The mesh topology page in Chromium: tree, link colours, offline nodes, escaping."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page

from citymesh.protocol.messages import Birth, encode
from citymesh.protocol.topics import Channel, topic_for
from citymesh.protocol.topology import Topology, TopologyNode, encode_topology
from tests.conftest import RunningServer
from tests.web.test_dashboard import browser, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

GATEWAY = "gw-mesh"
# A quantity name comes from the gateway, so it may carry markup that must
# stay text in the hover labels and the node table.
MARKUP = '<img src=x onerror="window.injected = true">'


def _nodes(now_ms: int) -> list[TopologyNode]:
    def node(address: int, role: str, parent: int | None, hops: int, **extra: Any):
        return TopologyNode(
            address=address,
            role=role,  # type: ignore[arg-type]
            parent=parent,
            hops=hops,
            mid=0x8120_0000 + address,
            last_seen_ms=now_ms,
            **extra,
        )

    return [
        node(0, "coordinator", None, 0),
        node(1, "router", 0, 1, link_quality=0.95),
        node(2, "router", 1, 2, link_quality=0.6),
        node(3, "sensor", 2, 3, link_quality=0.3, quantities=["co2", MARKUP]),
        node(4, "sensor", 1, 2, link_quality=0.9, online=False, quantities=["co2"]),
    ]


def _publish_map(server: RunningServer) -> None:
    now_ms = int(time.time() * 1000)
    birth = Birth(v=1, tenant=server.tenant, gateway=GATEWAY, site="hq", boot_ms=now_ms)
    server.publish_raw(
        topic_for(server.tenant, GATEWAY, Channel.BIRTH), [encode(birth)]
    )
    topology = Topology(
        v=1, tenant=server.tenant, gateway=GATEWAY, sent_ms=now_ms, nodes=_nodes(now_ms)
    )
    server.publish_raw(
        topic_for(server.tenant, GATEWAY, Channel.TOPOLOGY), [encode_topology(topology)]
    )
    collector = server.centre.collector
    assert collector is not None
    server.wait_for(
        lambda: collector.topology.latest(server.tenant, GATEWAY) is not None
    )


def test_topology_view_draws_mesh(server: RunningServer, page: Page) -> None:  # noqa: F811
    _publish_map(server)

    page.goto(f"{server.http_url}/static/topology.html")
    page.wait_for_selector(f"body[data-topology-ready='{server.tenant}/{GATEWAY}']")

    traces = page.evaluate(
        "() => document.getElementById('topology-chart').data.map("
        "t => ({name: t.name, count: t.customdata ? t.customdata.length : 0,"
        " segments: t.mode === 'lines' ? t.x.filter(v => v === null).length : 0,"
        " hover: t.hovertext || []}))"
    )
    by_name = {t["name"]: t for t in traces}
    assert by_name["coordinator"]["count"] == 1
    assert by_name["routers"]["count"] == 2
    assert by_name["sensor nodes"]["count"] == 1
    assert by_name["offline"]["count"] == 1
    assert by_name["good link (≥ 0.8)"]["segments"] == 2
    assert by_name["fair link (≥ 0.5)"]["segments"] == 1
    assert by_name["weak link (< 0.5)"]["segments"] == 1
    hover = " ".join(by_name["sensor nodes"]["hover"])
    assert "&lt;img" in hover
    assert "<img" not in hover

    rows = page.locator("#node-rows tr")
    assert rows.count() == 5
    offline_row = page.locator("#node-rows tr[data-address='4']")
    assert "offline" in (offline_row.get_attribute("class") or "")
    sensor_row = page.locator("#node-rows tr[data-address='3']")
    assert MARKUP in sensor_row.inner_text()
    assert page.evaluate("() => window.injected") is None
    summary = page.locator("#topology-summary").inner_text()
    assert summary.startswith("5 nodes, 4 online")

    page.goto(f"{server.http_url}/")
    page.click("#topology-link")
    page.wait_for_selector("body[data-topology-ready]")
