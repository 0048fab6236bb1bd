"""Tests for Graphite from/until parsing."""

from __future__ import annotations

import datetime as dt

import pytest

from citymesh.errors import QueryError
from citymesh.query.timeparse import parse_interval, parse_offset, parse_time

# 2024-03-10 15:47:30 UTC, a Sunday.
NOW = int(dt.datetime(2024, 3, 10, 15, 47, 30, tzinfo=dt.UTC).timestamp())
MIDNIGHT_UTC = int(dt.datetime(2024, 3, 10, tzinfo=dt.UTC).timestamp())


def test_parse_time_now() -> None:
    assert parse_time("now", NOW) == NOW
    assert parse_time(" NOW ", NOW) == NOW


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("-30s", 30),
        ("-30sec", 30),
        ("-1second", 1),
        ("-2seconds", 2),
        ("-5min", 300),
        ("-1minute", 60),
        ("-10minutes", 600),
        ("-24h", 86400),
        ("-1hour", 3600),
        ("-3hours", 10800),
        ("-7d", 7 * 86400),
        ("-1day", 86400),
        ("-2days", 2 * 86400),
        ("-2w", 14 * 86400),
        ("-1week", 7 * 86400),
        ("-3weeks", 21 * 86400),
        ("-1mon", 30 * 86400),
        ("-1month", 30 * 86400),
        ("-2months", 60 * 86400),
        ("-1y", 365 * 86400),
        ("-1year", 365 * 86400),
        ("-2years", 730 * 86400),
        ("-1d12h", 86400 + 43200),
    ],
)
def test_parse_time_relative_offsets(text: str, seconds: int) -> None:
    assert parse_time(text, NOW) == NOW - seconds


def test_parse_time_reference_with_offset() -> None:
    assert parse_time("now-1h", NOW) == NOW - 3600
    assert parse_time("now+30min", NOW) == NOW + 1800
    assert parse_time("midnight+2h", NOW) == MIDNIGHT_UTC + 7200
    assert parse_time("now - 1h", NOW) == NOW - 3600


def test_parse_time_day_words() -> None:
    assert parse_time("today", NOW) == MIDNIGHT_UTC
    assert parse_time("midnight", NOW) == MIDNIGHT_UTC
    assert parse_time("yesterday", NOW) == MIDNIGHT_UTC - 86400
    assert parse_time("tomorrow", NOW) == MIDNIGHT_UTC + 86400
    assert parse_time("noon", NOW) == MIDNIGHT_UTC + 12 * 3600
    assert parse_time("noon yesterday", NOW) == MIDNIGHT_UTC - 12 * 3600
    assert parse_time("midnight_tomorrow", NOW) == MIDNIGHT_UTC + 86400


def test_parse_time_absolute_date() -> None:
    expected = int(dt.datetime(2024, 1, 31, tzinfo=dt.UTC).timestamp())
    assert parse_time("20240131", NOW) == expected


def test_parse_time_absolute_clock_and_date() -> None:
    expected = int(dt.datetime(2024, 1, 31, 6, 5, tzinfo=dt.UTC).timestamp())
    assert parse_time("06:05_20240131", NOW) == expected
    assert parse_time("6:05_20240131", NOW) == expected
    assert parse_time("06:05", NOW) == MIDNIGHT_UTC + 6 * 3600 + 300


def test_parse_time_absolute_forms_use_tz() -> None:
    berlin = dt.datetime(2024, 1, 31, 6, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert parse_time("06:05_20240131", NOW, "Europe/Berlin") == int(berlin.timestamp())
    summer = dt.datetime(2024, 7, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert parse_time("20240701", NOW, "Europe/Berlin") == int(summer.timestamp())
    # In New York, NOW is 11:47 on 2024-03-10 (EDT, UTC-4, since 02:00 that day).
    ny_midnight = dt.datetime(2024, 3, 10, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert parse_time("today", NOW, "America/New_York") == int(ny_midnight.timestamp())


def test_parse_time_relative_ignores_tz() -> None:
    assert parse_time("-1h", NOW, "Asia/Tokyo") == NOW - 3600


def test_parse_time_epoch_seconds() -> None:
    assert parse_time("1700000000", NOW) == 1700000000
    assert parse_time("0", NOW) == 0


def test_parse_time_eight_digit_epoch() -> None:
    # Month 00 and day 45 are not dates, so these are epoch seconds.
    assert parse_time("20000000", NOW) == 20000000
    assert parse_time("20241345", NOW) == 20241345
    # Years up to 1900 are read as epoch seconds, as graphite-web does.
    assert parse_time("19000101", NOW) == 19000101


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterdayish",
        "-5m",
        "-5fortnights",
        "2024-01-01",
        "now-",
        "25:00_20240101",
        "12:00_20241399",
        "-h",
        "soon",
    ],
)
def test_parse_time_invalid_raises(text: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_time(text, NOW)
    message = str(caught.value)
    assert repr(text) in message or "time unit" in message or "clock time" in message


def test_parse_time_invalid_names_accepted_forms() -> None:
    with pytest.raises(QueryError, match="accepted forms: now, an offset"):
        parse_time("soon", NOW)


def test_parse_time_ambiguous_m_unit_hint() -> None:
    with pytest.raises(QueryError, match="'min' for minutes or 'mon' for months"):
        parse_time("-5m", NOW)


def test_parse_time_invalid_tz_raises() -> None:
    with pytest.raises(QueryError, match="invalid time zone 'Mars/Olympus'"):
        parse_time("today", NOW, "Mars/Olympus")


def test_parse_offset_signs() -> None:
    assert parse_offset("5min") == 300
    assert parse_offset("+5min") == 300
    assert parse_offset("-5min") == -300


def test_parse_interval_positive() -> None:
    assert parse_interval("1h") == 3600
    assert parse_interval("-1h") == 3600
    with pytest.raises(QueryError, match="longer than 0 seconds"):
        parse_interval("0s")
