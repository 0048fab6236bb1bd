"""The lean GET route of /render and /metrics/find against the FastAPI POST route."""

from __future__ import annotations

import httpx
import pytest

from citymesh.api.graphite import parse_render
from citymesh.api.graphite_asgi import runs_on_loop
from citymesh.registry.access import Scope
from citymesh.storage.base import SeriesMeta
from citymesh.storage.duckdb_store import DuckDBStore
from tests.api.tree import BASE, write_points
from tests.conftest import RunningServer

RANGE = {"from": str(BASE - 60), "until": str(BASE + 60 * 8)}


def _get_and_post(
    server: RunningServer,
    path: str,
    params: dict[str, str],
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, httpx.Response]:
    url = f"{server.http_url}{path}"
    sent = server.headers if headers is None else headers
    got = httpx.get(url, params=params, headers=sent)
    posted = httpx.post(url, data=params, headers=sent)
    return got, posted


def _assert_same(got: httpx.Response, posted: httpx.Response) -> None:
    assert got.status_code == posted.status_code, (got.text, posted.text)
    assert got.headers["content-type"] == posted.headers["content-type"]
    assert got.content == posted.content


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"format": "csv"},
        {"format": "raw"},
        {"format": "pickle"},
        {"maxDataPoints": "3"},
        {"noNullPoints": "1"},
        {"rawData": "1"},
    ],
)
def test_render_get_matches_post(loaded: RunningServer, extra: dict[str, str]) -> None:
    for target in (
        f"{loaded.tenant}.site.gw.dev1.gaps",
        f"sumSeries({loaded.tenant}.site.gw.*.temp)",
    ):
        got, posted = _get_and_post(
            loaded, "/render", {"target": target, **RANGE, **extra}
        )
        assert got.status_code == 200, got.text
        _assert_same(got, posted)


@pytest.mark.parametrize(
    "params",
    [
        {"query": "*"},
        {"query": "{tenant}.site.gw.*"},
        {"query": "{tenant}.site.gw.*", "wildcards": "1"},
        {"query": "{tenant}.site.gw.d", "format": "completer"},
    ],
)
def test_find_get_matches_post(loaded: RunningServer, params: dict[str, str]) -> None:
    query = {k: v.format(tenant=loaded.tenant) for k, v in params.items()}
    got, posted = _get_and_post(loaded, "/metrics/find", query)
    assert got.status_code == 200, got.text
    assert got.json(), query
    _assert_same(got, posted)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/render", {}, "missing target"),
        ("/render", {"target": "a.b", "format": "svg"}, "invalid format='svg'"),
        ("/render", {"target": "a.b", "maxDataPoints": "0"}, "maxDataPoints"),
        ("/render", {"target": "a.b", "from": "1000", "until": "1000"}, "time range"),
        ("/render", {"target": "fooBar(a.b)"}, "'fooBar'"),
        ("/render", {"target": "a.b", "from": "yesterday-ish"}, "invalid time"),
        ("/metrics/find", {}, "missing query"),
        ("/metrics/find", {"query": "*", "format": "xml"}, "invalid format='xml'"),
    ],
)
def test_query_errors_match_post(
    loaded: RunningServer,
    path: str,
    params: dict[str, str],
    message: str,
) -> None:
    got, posted = _get_and_post(loaded, path, params)
    assert got.status_code == 400, got.text
    assert message in got.json()["error"]
    _assert_same(got, posted)


def test_wrong_key_rejected_as_post(loaded: RunningServer) -> None:
    wrong = {"X-API-Key": "cmk_000000000000_" + "x" * 32}
    params = {"target": f"{loaded.tenant}.site.gw.dev2.temp", **RANGE}
    got, posted = _get_and_post(loaded, "/render", params, wrong)
    assert got.status_code == 401
    assert got.json() == {"detail": "invalid or revoked API key"}
    assert got.headers["WWW-Authenticate"] == "Bearer"
    _assert_same(got, posted)


def test_key_without_read_scope_gets_403(loaded: RunningServer) -> None:
    key = loaded.identities.api_keys.issue_key(loaded.tenant, [Scope.WRITE])
    headers = {"Authorization": f"Bearer {key.token}"}
    got, posted = _get_and_post(loaded, "/metrics/find", {"query": "*"}, headers)
    assert got.status_code == 403
    assert "read scope" in got.json()["detail"]
    _assert_same(got, posted)


HIDDEN = "private.site.gw.dev1.temp"


@pytest.mark.parametrize(
    "form",
    ["bearer", "lowercase bearer", "x-api-key", "basic and x-api-key"],
)
def test_key_header_forms_accepted(loaded: RunningServer, form: str) -> None:
    write_points(loaded, HIDDEN, [1.0, 2.0])
    token = loaded.identities.api_keys.issue_key(None, [Scope.READ], name=form).token
    headers = {
        "bearer": {"Authorization": f"Bearer {token}"},
        "lowercase bearer": {"Authorization": f"bearer  {token}"},
        "x-api-key": {"X-API-Key": token},
        "basic and x-api-key": {
            "Authorization": "Basic dXNlcjpwYXNz",
            "X-API-Key": token,
        },
    }[form]
    got, posted = _get_and_post(loaded, "/metrics/find", {"query": "*"}, headers)
    assert got.status_code == 200, got.text
    # Only a key that counted shows the tenant that is not public.
    assert "private" in {node["id"] for node in got.json()}
    _assert_same(got, posted)


def test_anonymous_sees_only_public(loaded: RunningServer) -> None:
    write_points(loaded, HIDDEN, [1.0, 2.0])
    url = loaded.http_url
    tops = httpx.get(f"{url}/metrics/find", params={"query": "*"}).json()
    anonymous = httpx.get(f"{url}/render", params={"target": HIDDEN, **RANGE})
    keyed = httpx.get(
        f"{url}/render", params={"target": HIDDEN, **RANGE}, headers=loaded.headers
    )

    assert {node["id"] for node in tops} == {loaded.tenant}
    assert anonymous.status_code == 200
    assert anonymous.json() == []
    assert [series["target"] for series in keyed.json()] == [HIDDEN]


@pytest.mark.parametrize(
    ("targets", "span_s", "expected"),
    [
        (["m.s.g.d.minute"], 86_400, True),
        (["m.s.g.d.minute", "m.s.g.d.unknown"], 86_400, True),
        (["m.s.g.d.minute"], 2 * 86_400, False),
        (["m.s.g.d.second"], 600, True),
        (["m.s.g.d.second"], 3_600, False),
        (["m.s.g.d.minute"] * 5, 3_600, False),
        (["m.s.g.d.*"], 600, False),
        (["sumSeries(m.s.g.d.minute)"], 600, False),
    ],
)
def test_runs_on_loop_only_small_reads(
    targets: list[str], span_s: int, expected: bool
) -> None:
    store = DuckDBStore(None)
    metas = [
        SeriesMeta("m.s.g.d.minute", "m", "s", "g", "d", "minute", "", step_s=60),
        SeriesMeta("m.s.g.d.second", "m", "s", "g", "d", "second", "", step_s=1),
    ]
    store.register(metas)
    params = {"target": targets, "from": ["1000000"], "until": [str(1000000 + span_s)]}
    try:
        assert runs_on_loop(store, parse_render(params)) is expected
    finally:
        store.close()
