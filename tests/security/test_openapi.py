"""schemathesis over the OpenAPI spec with a valid key, no key and a wrong key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import RunningServer, _start, server_settings

# NOTE: FastAPI gives a route served for GET and POST (/render, /metrics/find)
# one operation id for both methods and warns about it while building the spec.
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")

# Operations that respond later than a test may wait: the event stream
# never ends, and node commands wait for the (absent) mesh to respond.
# TODO: run these with a bounded client once schemathesis cases can stream.
UNBOUNDED = {
    "/api/v1/stream",
    "/api/v1/gateways/{tenant}/{gateway}/nodes/{address}/commands",
}
WRONG_KEY = "cmk_000000000000_" + "x" * 32


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A data centre for the whole module."""
    tenant = "schema"
    settings = server_settings(tmp_path_factory.mktemp("openapi"), tenant)
    server, shutdown = _start(settings, tenant)
    yield server
    shutdown()


@pytest.fixture(scope="module")
def api_schema(running: RunningServer) -> schemathesis.BaseSchema:
    """The server's OpenAPI spec."""
    return schemathesis.openapi.from_url(f"{running.http_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_no_server_error(case: schemathesis.Case, running: RunningServer) -> None:
    if case.path in UNBOUNDED:
        return
    for headers in ({"X-API-Key": running.admin_key}, {}, {"X-API-Key": WRONG_KEY}):
        response = case.call(headers=headers, timeout=15)
        assert response.status_code < 500, (case.method, case.path, response.text)
        if "X-API-Key" in headers and headers["X-API-Key"] == WRONG_KEY:
            # 400 and 422 come from body parsing, which FastAPI does first.
            assert response.status_code in (400, 401, 404, 405, 413, 422, 429), (
                case.method,
                case.path,
            )
