"""Time expressions read exactly as graphite-web's parseATTime reads them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from citymesh.query.timeparse import parse_time
from tests.query.graphite_oracle import GraphiteOracle

ZONE = "Europe/Berlin"
# Wednesday 2024-06-12 10:30 in Berlin, and a Sunday across the October DST end.
NOWS = (
    dt.datetime(2024, 6, 12, 8, 30, tzinfo=dt.UTC),
    dt.datetime(2024, 10, 27, 9, 15, tzinfo=dt.UTC),
)
EXPRESSIONS = (
    "now",
    "-24h",
    "-7d",
    "now-5min",
    "-1mon",
    "-1y",
    "midnight",
    "noon",
    "teatime",
    "yesterday",
    "tomorrow",
    "midnight yesterday",
    "teatime yesterday",
    "noon tomorrow",
    "16:00",
    "04:00pm",
    "11:15am",
    "3pm",
    "11am",
    "20240611",
    "16:00_20240611",
    "3pm_20240611",
    "06/01/24",
    "06/01/2024",
    "12/31/99",
    "jun1",
    "jan15",
    "dec31",
    "monday",
    "wednesday",
    "sunday",
    "noon friday",
    "20240611-1d",
    "midnight+2h",
    "1718000000",
)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphiteOracle]:
    yield GraphiteOracle(Path(tmp_path_factory.mktemp("graphite-time")))


@pytest.mark.parametrize("now", NOWS, ids=["june", "dst-end"])
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_time_expression_matches_graphite(
    oracle: GraphiteOracle, expression: str, now: dt.datetime
) -> None:
    import pytz
    from graphite.render.attime import parseATTime

    zone = pytz.timezone(ZONE)
    expected = parseATTime(expression, zone, now.astimezone(zone))
    assert parse_time(expression, int(now.timestamp()), ZONE) == int(
        expected.timestamp()
    )
