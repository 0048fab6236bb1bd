"""Graphite endpoints through the real HTTP app, as Grafana and scripts call them."""

from __future__ import annotations

import pickle
import time

import httpx

from tests.api.tree import BASE
from tests.conftest import RunningServer


def _render(server: RunningServer, target: str, **params: str) -> httpx.Response:
    query = {"target": target, "from": str(BASE - 60), "until": str(BASE + 60 * 8)}
    query.update(params)
    return httpx.get(f"{server.http_url}/render", params=query, headers=server.headers)


def _values(response: httpx.Response) -> list[float | None]:
    assert response.status_code == 200, response.text
    (series,) = response.json()
    return [value for value, _ in series["datapoints"]]


def test_render_non_negative_derivative_wrap(loaded: RunningServer) -> None:
    t = loaded.tenant
    response = _render(
        loaded,
        f"nonNegativeDerivative({t}.site.gw.dev1.counter,499)",
        until=str(BASE + 300),
    )
    # 600 is above maxValue, so it is null as well.
    assert _values(response) == [None, 30.0, 29.0, 30.0, 60.0, None]


def test_render_per_second_wrap(loaded: RunningServer) -> None:
    t = loaded.tenant
    response = _render(
        loaded, f"perSecond({t}.site.gw.dev1.counter,499)", until=str(BASE + 240)
    )
    assert _values(response) == [None, 0.5, 0.483333, 0.5, 1.0]


def test_render_keep_last_value_limit(loaded: RunningServer) -> None:
    response = _render(loaded, f"keepLastValue({loaded.tenant}.site.gw.dev1.gaps,2)")
    assert _values(response) == [4, 4, 6, None, None, None, 8, 8, 8]


def test_render_zero_interval_fails_fast(loaded: RunningServer) -> None:
    started = time.monotonic()
    response = _render(
        loaded, f"summarize({loaded.tenant}.site.gw.dev2.temp,'0min','sum',true)"
    )
    assert response.status_code == 400
    assert "summarize" in response.json()["error"]
    assert "intervalString" in response.json()["error"]
    assert time.monotonic() - started < 5
    # The server keeps serving.
    assert _render(loaded, f"{loaded.tenant}.site.gw.dev2.temp").status_code == 200


def test_render_unknown_function_names_it(loaded: RunningServer) -> None:
    response = _render(loaded, f"fooBar({loaded.tenant}.site.gw.dev2.temp)")
    assert response.status_code == 400
    assert "'fooBar'" in response.json()["error"]


def test_render_bad_argument_names_function_and_argument(loaded: RunningServer) -> None:
    response = _render(loaded, f"movingAverage({loaded.tenant}.site.gw.dev2.temp,'x')")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "movingAverage" in error
    assert "windowSize" in error


def test_render_grafana_post_several_targets(loaded: RunningServer) -> None:
    t = loaded.tenant
    response = httpx.post(
        f"{loaded.http_url}/render",
        data={
            "target": [f"{t}.site.gw.dev2.temp", f"aliasByNode({t}.site.gw.*.temp,3)"],
            "from": "-6h",
            "until": "now",
            "format": "json",
            "maxDataPoints": "50",
        },
        headers=loaded.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["target"] for s in body] == [f"{t}.site.gw.dev2.temp", "dev2", "dev3"]
    for series in body:
        assert len(series["datapoints"]) <= 51
        stamps = [stamp for _, stamp in series["datapoints"]]
        assert stamps == sorted(stamps)
        assert any(value is not None for value, _ in series["datapoints"])


def test_render_no_null_points(loaded: RunningServer) -> None:
    response = _render(loaded, f"{loaded.tenant}.site.gw.dev1.gaps", noNullPoints="1")
    assert _values(response) == [4, 6, 8]


def test_render_formats(loaded: RunningServer) -> None:
    target = f"{loaded.tenant}.site.gw.dev1.gaps"
    csv = _render(loaded, target, format="csv", until=str(BASE + 60))
    assert csv.text.splitlines()[0].endswith(",4.0")
    raw = _render(loaded, target, format="raw", until=str(BASE + 60))
    assert raw.text == f"{target},{BASE},{BASE + 120},60|4.0,None\n"
    info = pickle.loads(
        _render(loaded, target, format="pickle", until=str(BASE + 60)).content
    )
    assert info[0]["values"] == [4.0, None]
    assert info[0]["start"] == BASE


def test_metrics_find_down_the_tree(loaded: RunningServer) -> None:
    query = "*"
    path: list[str] = []
    for _ in range(5):
        response = httpx.get(
            f"{loaded.http_url}/metrics/find",
            params={"query": query},
            headers=loaded.headers,
        )
        assert response.status_code == 200
        nodes = response.json()
        assert nodes, query
        chosen = nodes[0]
        path.append(chosen["text"])
        query = chosen["id"] + ".*"
    assert chosen["leaf"] == 1
    assert path[0] == loaded.tenant


def test_metrics_expand_and_index(loaded: RunningServer) -> None:
    t = loaded.tenant
    expanded = httpx.get(
        f"{loaded.http_url}/metrics/expand",
        params={"query": f"{t}.site.gw.*.temp", "leavesOnly": "1"},
        headers=loaded.headers,
    ).json()
    assert expanded == {"results": [f"{t}.site.gw.dev2.temp", f"{t}.site.gw.dev3.temp"]}
    index = httpx.get(
        f"{loaded.http_url}/metrics/index.json", headers=loaded.headers
    ).json()
    assert f"{t}.site.gw.dev1.gaps" in index
    assert all(";" not in name for name in index)


def test_tags_autocomplete_and_find(loaded: RunningServer) -> None:
    url = loaded.http_url
    headers = loaded.headers
    tags = httpx.get(f"{url}/tags/autoComplete/tags", headers=headers).json()
    assert "host" in tags
    values = httpx.get(
        f"{url}/tags/autoComplete/values", params={"tag": "host"}, headers=headers
    ).json()
    assert values == ["a", "b"]
    found = httpx.get(
        f"{url}/tags/findSeries", params={"expr": "host=a"}, headers=headers
    ).json()
    assert found == [f"{loaded.tenant}.site.gw.dev2.load;host=a"]
    detail = httpx.get(f"{url}/tags/host", headers=headers).json()
    assert detail["values"] == [{"count": 1, "value": "a"}, {"count": 1, "value": "b"}]
    response = _render(loaded, "sumSeries(seriesByTag('host=~[ab]'))")
    assert _values(response)[:5] == [3.0] * 5


def test_functions_lists_catalog(loaded: RunningServer) -> None:
    body = httpx.get(f"{loaded.http_url}/functions", headers=loaded.headers).json()
    assert body["summarize"]["group"] == "Transform"
    assert [p["name"] for p in body["summarize"]["params"]][:2] == [
        "seriesList",
        "intervalString",
    ]
