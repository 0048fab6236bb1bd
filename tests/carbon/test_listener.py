"""The carbon listeners in a running data centre: TCP, UDP, pickle and collectd."""

from __future__ import annotations

import asyncio
import pickle
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from citymesh.carbon.listener import CarbonListener
from citymesh.carbon.settings import CarbonSettings
from citymesh.carbon.sink import CarbonSink
from citymesh.errors import ConfigError
from citymesh.storage.duckdb_store import DuckDBStore
from tests.conftest import RunningServer, _start, server_settings

# A whole hour, recent enough for raw points to be read back.
T0 = int(time.time()) // 3600 * 3600 - 3600


@pytest.fixture
def carbon_server(tmp_path: Path, tenant: str) -> Iterator[RunningServer]:
    """A data centre with the carbon listeners on free ports."""
    settings = server_settings(tmp_path, tenant).model_copy(
        update={
            "carbon": CarbonSettings(enabled=True, port=0, pickle_port=0, tenant=tenant)
        }
    )
    running, shutdown = _start(settings, tenant)
    yield running
    shutdown()


def _listener(server: RunningServer) -> CarbonListener:
    listener = server.centre.carbon
    assert listener is not None
    return listener


def _wait_written(server: RunningServer, lines: int) -> None:
    listener = _listener(server)
    server.wait_for(lambda: listener.sink.stats.lines_received >= lines)
    server.call(listener.sink.wait_idle())


def _send_tcp(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)


def _render(server: RunningServer, target: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{server.http_url}/render",
        params={
            "target": target.format(tenant=server.tenant),
            # A bucket starting exactly at `from` is left out by graphite-web,
            # so the range starts an hour earlier.
            "from": str(T0 - 3600),
            "until": str(T0 + 3600),
        },
        headers=server.headers,
    )
    assert response.status_code == 200, response.text
    body: list[dict[str, object]] = response.json()
    return body


def _values(series: dict[str, object]) -> list[object]:
    datapoints = series["datapoints"]
    assert isinstance(datapoints, list)
    return [value for value, _ in datapoints if value is not None]


def test_plaintext_tcp_rejects_and_stores_neighbours(
    carbon_server: RunningServer,
) -> None:
    port = _listener(carbon_server).ports.plaintext
    packet = (
        f"bad.value nan {T0}\n"
        f"good.after.nan 1 {T0}\n"
        f" 2 {T0}\n"
        f"good.after.empty 3 {T0}\r\n"
    ).encode()
    _send_tcp(port, packet)
    _wait_written(carbon_server, 4)
    stats = _listener(carbon_server).sink.stats
    assert stats.rejected["non_finite_value"] == 1
    assert stats.rejected["empty_path"] == 1
    assert stats.points_stored == 2
    store = carbon_server.centre.store
    assert store is not None
    tenant = carbon_server.tenant
    assert [m.name for m in store.find(f"{tenant}.good.*.*")] == [
        f"{tenant}.good.after.empty",
        f"{tenant}.good.after.nan",
    ]
    (meta,) = store.series([f"{tenant}.good.after.nan"])
    assert meta.tenant == tenant
    assert meta.step_s == 60
    assert store.find(f"{tenant}.bad.*") == []


def test_plaintext_udp_stores_valid_lines(carbon_server: RunningServer) -> None:
    port = _listener(carbon_server).ports.udp
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"u.nan NaN {T0}\nu.ok 5 {T0}".encode(), ("127.0.0.1", port))
    _wait_written(carbon_server, 2)
    stats = _listener(carbon_server).sink.stats
    assert stats.rejected["non_finite_value"] == 1
    assert _values(_render(carbon_server, "{tenant}.u.ok")[0]) == [5.0]


def test_duplicate_point_keeps_last_value(carbon_server: RunningServer) -> None:
    port = _listener(carbon_server).ports.plaintext
    first = "".join(f"dup.count 10 {T0 + 60 * i}\n" for i in range(6))
    _send_tcp(port, first.encode())
    _wait_written(carbon_server, 6)
    # The same timestamps again, with new values: carbon keeps the last.
    second = "".join(f"dup.count 1 {T0 + 60 * i}\n" for i in range(6))
    _send_tcp(port, second.encode())
    _wait_written(carbon_server, 12)
    (series,) = _render(carbon_server, "summarize({tenant}.dup.count,'1h','sum')")
    assert _values(series) == [6.0]


def test_pickle_frames_stored(carbon_server: RunningServer) -> None:
    port = _listener(carbon_server).ports.pickle
    items = [(f"pk.m{i};host=h{i}", (T0 + 60, float(i))) for i in range(3)]
    payload = pickle.dumps(items, protocol=2)
    _send_tcp(port, struct.pack("!L", len(payload)) + payload)
    _wait_written(carbon_server, 3)
    store = carbon_server.centre.store
    assert store is not None
    (meta,) = store.series([f"{carbon_server.tenant}.pk.m1;host=h1"])
    assert meta.tags == {"host": "h1"}


def test_listener_port_in_use_names_option(tmp_path: Path) -> None:
    store = DuckDBStore(None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def start() -> None:
            listener = CarbonListener(
                CarbonSink(store, "t"), "127.0.0.1", port, None, False
            )
            async with listener:
                pass

        with pytest.raises(ConfigError, match=r"carbon\.port"):
            asyncio.run(start())
    store.close()


COLLECTD_CONF = """
Hostname "cmhost"
FQDNLookup false
Interval 1
BaseDir "{base}"
PIDFile "{base}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin load
LoadPlugin memory
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "citymesh">
    Host "127.0.0.1"
    Port "{port}"
    Protocol "tcp"
    Prefix "collectd."
    StoreRates true
    EscapeCharacter "_"
  </Node>
</Plugin>
"""


def test_collectd_write_graphite_feeds_listener(
    carbon_server: RunningServer, tmp_path: Path
) -> None:
    collectd = shutil.which("collectd")
    assert collectd is not None, "install Debian's collectd-core for this test"
    config = tmp_path / "collectd.conf"
    port = _listener(carbon_server).ports.plaintext
    config.write_text(COLLECTD_CONF.format(base=tmp_path, port=port))
    log = (tmp_path / "collectd.log").open("wb")
    process = subprocess.Popen(
        [collectd, "-f", "-C", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    tenant = carbon_server.tenant
    try:
        store = carbon_server.centre.store
        assert store is not None
        carbon_server.wait_for(
            lambda: bool(store.find(f"{tenant}.collectd.cmhost.load.load.shortterm")),
            timeout=30,
        )
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    base = carbon_server.http_url
    found = httpx.get(
        f"{base}/metrics/find",
        params={"query": f"{tenant}.collectd.cmhost.*"},
        headers=carbon_server.headers,
    )
    assert found.status_code == 200
    texts = {node["text"] for node in found.json()}
    assert {"load", "memory"} <= texts
    response = httpx.get(
        f"{base}/render",
        params={
            "target": f"{tenant}.collectd.cmhost.load.load.shortterm",
            "from": "-5min",
        },
        headers=carbon_server.headers,
    )
    (series,) = response.json()
    assert _values(series)
