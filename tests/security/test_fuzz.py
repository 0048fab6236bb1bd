"""Property-based fuzzing of MQTT payloads and API parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citymesh.protocol.topics import Channel
from tests.conftest import RunningServer, _start, server_settings

TENANT = "fuzz"
GATEWAY = "gw-fuzz"
BASE_MS = 1_700_000_000_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
readings = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, "1"]),
        "tenant": st.sampled_from([TENANT, "other", ""]),
        "gateway": st.sampled_from([GATEWAY, "gw-x"]),
        "site": st.sampled_from(["lab", "la b"]),
        "seq": st.integers(min_value=-1, max_value=10**6),
        "sent_ms": st.just(BASE_MS),
        "series": st.lists(
            st.fixed_dictionaries(
                {
                    "device": st.sampled_from(["d-1", "d-2", "bad.dev"]),
                    "quantity": st.sampled_from(["co2", "temperature", "nope"]),
                    "points": st.lists(
                        st.tuples(
                            st.integers(BASE_MS, BASE_MS + 10**9),
                            st.floats(allow_nan=True) | st.integers() | st.text(),
                        ),
                        max_size=5,
                    ),
                }
            ),
            max_size=3,
        ),
    }
)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A data centre of its own, with the fuzzing gateway enrolled."""
    path: Path = tmp_path_factory.mktemp("fuzz")
    server, shutdown = _start(server_settings(path, TENANT), TENANT)
    server.gateway_login(TENANT, GATEWAY)
    yield server
    shutdown()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    message=readings.map(lambda m: json.dumps(m).encode())
    | json_values.map(lambda m: json.dumps(m).encode())
    | st.binary(max_size=200),
    channel=st.sampled_from([c.value for c in Channel] + ["bogus"]),
)
def test_mqtt_payload_fuzz_counted_and_intact(
    running: RunningServer, message: bytes, channel: str
) -> None:
    collector = running.centre.collector
    store = running.centre.store
    assert collector is not None
    assert store is not None
    stats = collector.stats
    before = (
        stats.messages_received,
        stats.batches_accepted,
        sum(stats.rejected.values()),
    )
    topic = f"citymesh/v1/{TENANT}/{GATEWAY}/{channel}"

    running.call(collector.handle(topic, message))

    after = (
        stats.messages_received,
        stats.batches_accepted,
        sum(stats.rejected.values()),
    )
    assert after[0] == before[0] + 1
    if after[1] > before[1]:
        running.wait_stored(accepted=after[1])
        batch = json.loads(message)
        expected: dict[str, dict[int, float]] = {}
        for item in batch["series"]:
            device, quantity = item["device"], item["quantity"]
            name = f"{TENANT}.{batch['site']}.{GATEWAY}.{device}.{quantity}"
            # The last value written for a timestamp wins, within a batch too.
            expected.setdefault(name, {}).update(
                {int(ts): float(value) for ts, value in item["points"]}
            )
        for name, points in expected.items():
            (data,) = store.read([name], BASE_MS, BASE_MS + 10**9 + 1)
            stored = dict(
                zip(data.timestamps.tolist(), data.values.tolist(), strict=True)
            )
            assert {ts: stored.get(ts) for ts in points} == points
        assert after[2] == before[2]
    elif channel in (Channel.READINGS.value, "bogus") and message:
        assert after[2] == before[2] + 1, (topic, message[:80])


api_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=api_text, start=api_text, until=api_text, query=api_text, step=api_text)
def test_api_parameter_fuzz_no_server_error(
    running: RunningServer, target: str, start: str, until: str, query: str, step: str
) -> None:
    base = running.http_url
    for headers in (running.headers, {}):
        responses = [
            httpx.get(
                f"{base}/render",
                params={"target": target, "from": start, "until": until},
                headers=headers,
            ),
            httpx.get(f"{base}/metrics/find", params={"query": query}, headers=headers),
            httpx.get(
                f"{base}/api/v1/series/{TENANT}.lab.{GATEWAY}.d-1.co2/points",
                params={"from": start, "until": until, "step": step},
                headers=headers,
            ),
        ]
        for response in responses:
            assert response.status_code < 500, (response.url, response.text)
