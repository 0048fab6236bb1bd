"""Fixtures of the HTTP API tests."""

from __future__ import annotations

import pytest

from tests.api.tree import write_points
from tests.conftest import RunningServer


@pytest.fixture
def loaded(server: RunningServer) -> RunningServer:
    """A running server with a small tree, a wrapping counter and tagged series."""
    t = server.tenant
    write_points(server, f"{t}.site.gw.dev1.counter", [440, 470, 499, 29, 89, 600])
    write_points(
        server, f"{t}.site.gw.dev1.gaps", [4, None, 6, None, None, None, 8, None, None]
    )
    write_points(server, f"{t}.site.gw.dev2.temp", [float(i) for i in range(30)])
    write_points(server, f"{t}.site.gw.dev3.temp", [float(2 * i) for i in range(30)])
    write_points(server, f"{t}.site.gw.dev2.load;host=a", [1.0] * 5, host="a")
    write_points(server, f"{t}.site.gw.dev3.load;host=b", [2.0] * 5, host="b")
    return server
