"""Parse Graphite `from`/`until` time expressions into epoch seconds.

A time expression is an optional reference followed by an optional signed
offset, with spaces and commas ignored and case folded:

* references: `now`, an all-digit epoch in seconds, `YYYYMMDD`, `HH:MM`,
  `HH:MM_YYYYMMDD`, `midnight`, `noon`, `today`, `yesterday`, `tomorrow`, and
  the combinations `midnight yesterday` or `noon_20240301`;
* offsets: a sign and one or more `<count><unit>` terms, such as `-24h`,
  `+1d12h` or `now-5min`. A missing reference means `now`.

An 8-digit string is read as `YYYYMMDD` when it is a valid calendar date after
1900 and as epoch seconds otherwise. Months count as 30 days and years as 365
days, as in graphite-web. Dates and clock times are wall time in `tz`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from citymesh.errors import QueryError

logger = logging.getLogger(__name__)

_UNIT_SECONDS: dict[str, int] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("min", "mins", "minute", "minutes"), 60),
    (("h", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
    (("w", "week", "weeks"), 7 * 86400),
    (("mon", "month", "months"), 30 * 86400),
    (("y", "year", "years"), 365 * 86400),
):
    for _name in _names:
        _UNIT_SECONDS[_name] = _seconds

ACCEPTED_FORMS = (
    "now, an offset such as -24h or -5min (units s, min, h, d, w, mon, y), "
    "now-1h, today, yesterday, tomorrow, midnight, noon, HH:MM, YYYYMMDD, "
    "HH:MM_YYYYMMDD or epoch seconds"
)

_TERM_RE = re.compile(r"(\d+)([a-z]+)")
_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})")
_DATE_RE = re.compile(r"\d{8}")
_DAY_WORDS = {"today": 0, "yesterday": -1, "tomorrow": 1}
_CLOCK_WORDS = {"midnight": (0, 0), "noon": (12, 0)}


def resolve_tz(tz: str | dt.tzinfo | None) -> dt.tzinfo:
    """Return the time zone for an IANA name, defaulting to UTC."""
    if tz is None or tz == "":
        return dt.UTC
    if isinstance(tz, dt.tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise QueryError(
            f"invalid time zone {tz!r}: use an IANA name such as 'UTC' or "
            "'Europe/Berlin'"
        ) from err


def parse_offset(value: str) -> int:
    """Parse a signed offset such as `-1h`, `5min` or `+1d12h` into seconds."""
    text = value.strip().lower().replace(" ", "")
    sign = 1
    if text and text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if not text:
        raise QueryError(f"invalid time offset {value!r}: no count and unit")
    total = 0
    position = 0
    while position < len(text):
        match = _TERM_RE.match(text, position)
        if match is None:
            raise QueryError(
                f"invalid time offset {value!r}: expected <count><unit> terms "
                "such as 5min, 24h or 1d12h"
            )
        unit = match.group(2)
        if unit not in _UNIT_SECONDS:
            hint = " (use 'min' for minutes or 'mon' for months)" if unit == "m" else ""
            raise QueryError(
                f"invalid time unit {unit!r} in {value!r}{hint}: use s, min, h, "
                "d, w, mon or y"
            )
        total += int(match.group(1)) * _UNIT_SECONDS[unit]
        position = match.end()
    return sign * total


def parse_interval(value: str) -> int:
    """Parse a positive interval such as `1h` or `5min` into seconds."""
    seconds = abs(parse_offset(value))
    if seconds == 0:
        raise QueryError(f"invalid interval {value!r}: must be longer than 0 seconds")
    return seconds


def parse_time(value: str, now: int, tz: str | dt.tzinfo | None = None) -> int:
    """Parse a Graphite `from`/`until` value into epoch seconds.

    `now` is the current time in epoch seconds and `tz` the IANA zone used for
    dates and clock times. Raises QueryError naming the value and the accepted
    forms when the value cannot be parsed.
    """
    zone = resolve_tz(tz)
    text = value.strip().lower().replace(" ", "").replace(",", "")
    if not text:
        raise QueryError(
            f"invalid time {value!r}: empty; accepted forms: {ACCEPTED_FORMS}"
        )
    if text.isdigit():
        date = _read_date(text)
        if date is None:
            return int(text)
        return _wall_time(date, 0, 0, zone)

    reference, offset = _split_offset(text)
    try:
        base = _parse_reference(reference, now, zone)
        delta = parse_offset(offset) if offset else 0
    except QueryError as err:
        raise QueryError(
            f"invalid time {value!r} ({err}); accepted forms: {ACCEPTED_FORMS}"
        ) from err
    if base is None:
        raise QueryError(f"invalid time {value!r}; accepted forms: {ACCEPTED_FORMS}")
    return base + delta


def _split_offset(text: str) -> tuple[str, str]:
    for index, char in enumerate(text):
        if char in "+-":
            return text[:index], text[index:]
    return text, ""


def _parse_reference(reference: str, now: int, zone: dt.tzinfo) -> int | None:
    """Return the epoch seconds of a reference, or None if it is not one."""
    if reference in ("", "now"):
        return now
    if reference.isdigit():
        date = _read_date(reference)
        return int(reference) if date is None else _wall_time(date, 0, 0, zone)

    rest = reference
    clock: tuple[int, int] | None = None
    match = _CLOCK_RE.match(rest)
    if match is not None:
        clock = (int(match.group(1)), int(match.group(2)))
        if clock[0] > 23 or clock[1] > 59:
            raise QueryError(f"invalid clock time {match.group(0)!r}")
        rest = rest[match.end() :]
    else:
        for word, hours_minutes in _CLOCK_WORDS.items():
            if rest.startswith(word):
                clock = hours_minutes
                rest = rest[len(word) :]
                break
    rest = rest.removeprefix("_")

    today = dt.datetime.fromtimestamp(now, zone).date()
    day: dt.date | None
    if rest == "":
        day = today
    elif rest in _DAY_WORDS:
        day = today + dt.timedelta(days=_DAY_WORDS[rest])
    elif _DATE_RE.fullmatch(rest):
        day = _read_date(rest)
        if day is None:
            raise QueryError(f"invalid date {rest!r}: expected YYYYMMDD")
    else:
        return None
    if clock is None and rest == "":
        return None
    hour, minute = clock if clock is not None else (0, 0)
    return _wall_time(day, hour, minute, zone)


def _read_date(text: str) -> dt.date | None:
    """Read an 8-digit YYYYMMDD string, or return None if it is not a date."""
    if len(text) != 8:
        return None
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:])
    if year <= 1900:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _wall_time(day: dt.date, hour: int, minute: int, zone: dt.tzinfo) -> int:
    moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    return int(moment.timestamp())
