"""Parse Graphite `from`/`until` time expressions into epoch seconds.

A time expression is an optional reference followed by an optional signed
offset, with spaces and commas ignored and case folded:

* references: `now`, an all-digit epoch in seconds, or a time of day
  (`HH:MM`, `HH:MMam`, `3pm`, `midnight`, `noon`, `teatime`) and a day
  (`today`, `yesterday`, `tomorrow`, `YYYYMMDD`, `MM/DD/YY`, a month name and
  day such as `jan15`, or a weekday such as `monday`, the latest one), either
  part optional, e.g. `midnight yesterday`, `noon_20240301` or `6pm friday`;
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
    "now-1h, today, yesterday, tomorrow, midnight, noon, teatime, HH:MM, 3pm, "
    "YYYYMMDD, MM/DD/YY, jan15, monday, HH:MM_YYYYMMDD or epoch seconds"
)

_TERM_RE = re.compile(r"(\d+)([a-z]+)")
_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})")
_DATE_RE = re.compile(r"\d{8}")
_DAY_WORDS = {"today": 0, "yesterday": -1, "tomorrow": 1}
_CLOCK_WORDS = {"midnight": (0, 0), "noon": (12, 0), "teatime": (16, 0)}
_HOUR_RE = re.compile(r"(\d{1,2})(am|pm)")
_MONTHS = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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


def _parse_clock(rest: str) -> tuple[tuple[int, int] | None, str]:
    """Split a leading time of day off a reference, as graphite-web reads it."""
    clock: tuple[int, int] | None = None
    match = _CLOCK_RE.match(rest)
    if match is not None:
        clock = (int(match.group(1)), int(match.group(2)))
        rest = rest[match.end() :]
        if rest.startswith("am"):
            rest = rest[2:]
        elif rest.startswith("pm"):
            clock = ((clock[0] + 12) % 24, clock[1])
            rest = rest[2:]
        if clock[0] > 23 or clock[1] > 59:
            raise QueryError(f"invalid clock time {match.group(0)!r}")
        return clock, rest
    match = _HOUR_RE.match(rest)
    if match is not None:
        hour = int(match.group(1))
        if hour > 23:
            raise QueryError(f"invalid clock time {match.group(0)!r}")
        if match.group(2) == "pm":
            hour = (hour + 12) % 24
        return (hour, 0), rest[match.end() :]
    for word, hours_minutes in _CLOCK_WORDS.items():
        if rest.startswith(word):
            return hours_minutes, rest[len(word) :]
    return None, rest


def _parse_day(rest: str, today: dt.date) -> dt.date | None:
    """Return the day a reference names, or None if it names none we know."""
    if rest == "":
        return today
    if rest in _DAY_WORDS:
        return today + dt.timedelta(days=_DAY_WORDS[rest])
    if _DATE_RE.fullmatch(rest):
        day = _read_date(rest)
        if day is None:
            raise QueryError(f"invalid date {rest!r}: expected YYYYMMDD")
        return day
    if rest.count("/") == 2:
        try:
            month, day_of_month, year = (int(part) for part in rest.split("/"))
            # Two-digit years as graphite-web reads them: 70-99 -> 19xx, else 20xx.
            if year < 1900:
                year += 1900
            if year < 1970:
                year += 100
            return dt.date(year, month, day_of_month)
        except ValueError:
            raise QueryError(f"invalid date {rest!r}: expected MM/DD/YY") from None
    if rest[:3] in _MONTHS:
        digits = re.search(r"(\d{1,2})$", rest)
        if digits is None:
            raise QueryError(
                f"invalid date {rest!r}: a day of month must follow the month name"
            )
        try:
            return today.replace(
                month=_MONTHS.index(rest[:3]) + 1, day=int(digits.group(1))
            )
        except ValueError:
            raise QueryError(f"invalid date {rest!r}: no such day") from None
    if rest[:3] in _WEEKDAYS:
        # The most recent such weekday, today included.
        back = (today.weekday() - _WEEKDAYS.index(rest[:3])) % 7
        return today - dt.timedelta(days=back)
    return None


def _parse_reference(reference: str, now: int, zone: dt.tzinfo) -> int | None:
    """Return the epoch seconds of a reference, or None if it is not one."""
    if reference in ("", "now"):
        return now
    if reference.isdigit():
        date = _read_date(reference)
        return int(reference) if date is None else _wall_time(date, 0, 0, zone)

    clock, rest = _parse_clock(reference)
    rest = rest.removeprefix("_")
    if clock is None and rest == "":
        return None
    today = dt.datetime.fromtimestamp(now, zone).date()
    day = _parse_day(rest, today)
    if day is None:
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
