"""Replay clock: releases recorded readings paced as if they were live.

Each source is paced from its own first reading, so all sources start at
once. A reading is due `(recorded - first recorded) / speed` seconds after
the replay starts. Readings are released in slices, each holding everything
due at that moment (capped at `max_batch`), so the caller can batch them.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from citymesh.errors import ConfigError
from citymesh.gateway.sources.base import RecordedReading, RecordedSource

logger = logging.getLogger(__name__)

DEFAULT_SPEED = 600.0
"""Recorded seconds per wall-clock second: one recorded minute per 100 ms."""

DEFAULT_MAX_BATCH = 1000

# Tolerance in seconds when comparing a due time with the clock, so that float
# rounding of `start + due` does not cause an extra sleep of a few ns.
_EPSILON_S = 1e-9


class Clock(Protocol):
    """Time source of a replay, replaceable by a fake clock in tests."""

    def monotonic(self) -> float:
        """Return a monotonic time in seconds, for pacing."""
        ...

    def time(self) -> float:
        """Return the wall-clock time in seconds since the epoch, for stamps."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds`."""
        ...


class SystemClock:
    """The real clock: time.monotonic, time.time and asyncio.sleep."""

    def monotonic(self) -> float:
        """Return time.monotonic()."""
        return time.monotonic()

    def time(self) -> float:
        """Return time.time()."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait with asyncio.sleep."""
        await asyncio.sleep(seconds)


class TimestampMode(StrEnum):
    """Stamping rule for replayed readings."""

    RECORDED = "recorded"
    """Keep the recorded UTC time."""
    NOW = "now"
    """Stamp with the reading's scheduled emission time on the wall clock."""


@dataclass(slots=True)
class _Cursor:
    """Position of the replay in one source."""

    source: RecordedSource
    readings: Iterator[RecordedReading]
    first_ms: int
    last_ms: int
    shift_ms: int = 0
    """Recorded time added by earlier loop passes."""
    passes: int = 1


def _check_speed(speed: float | None) -> float | None:
    if speed is None or speed == 0:
        return None
    if not math.isfinite(speed) or speed < 0:
        raise ConfigError(
            f"invalid replay speed {speed!r}: use a positive number of recorded "
            "seconds per second, or 0 for as fast as possible"
        )
    return float(speed)


class Replay:
    """Releases the readings of several recorded sources on a shared schedule.

    Iterate `batches()` for slices of readings, or the replay itself for
    single readings. A replay can be iterated once.
    """

    def __init__(
        self,
        sources: Sequence[RecordedSource],
        *,
        speed: float | None = DEFAULT_SPEED,
        timestamps: TimestampMode | str = TimestampMode.RECORDED,
        loop: bool = False,
        max_batch: int = DEFAULT_MAX_BATCH,
        clock: Clock | None = None,
    ) -> None:
        """Configure a replay.

        Args:
            sources: sources to replay together, each paced from its own start.
            speed: recorded seconds per wall-clock second. None or 0 releases
                readings as fast as possible.
            timestamps: `recorded` keeps recorded times, `now` stamps each
                reading with its scheduled emission time.
            loop: start each source over when it ends, continuing its
                timeline. Needs timestamps `now` and a speed.
            max_batch: maximum number of readings in one slice.
            clock: time source; SystemClock when None.

        Raises:
            ConfigError: an argument is invalid or the combination is.
        """
        self.speed = _check_speed(speed)
        try:
            self.timestamps = TimestampMode(timestamps)
        except ValueError:
            choices = ", ".join(m.value for m in TimestampMode)
            raise ConfigError(
                f"invalid replay timestamp mode {timestamps!r}; choose one of {choices}"
            ) from None
        if self.timestamps is TimestampMode.NOW and self.speed is None:
            raise ConfigError(
                "replay timestamps 'now' need a positive speed, because at "
                "unlimited speed every reading would get the same stamp"
            )
        if loop and self.timestamps is not TimestampMode.NOW:
            raise ConfigError(
                "replay loop needs timestamps 'now', because recorded stamps "
                "would repeat on each pass"
            )
        if max_batch < 1:
            raise ConfigError(f"invalid replay max_batch {max_batch}: use 1 or more")
        self.sources = tuple(sources)
        self.loop = loop
        self.max_batch = max_batch
        self.clock: Clock = clock or SystemClock()
        self.released = 0
        """Number of readings released so far."""
        self._started = False

    def __aiter__(self) -> AsyncIterator[RecordedReading]:
        return self._single_readings()

    async def _single_readings(self) -> AsyncIterator[RecordedReading]:
        async for batch in self.batches():
            for reading in batch:
                yield reading

    async def batches(self) -> AsyncIterator[tuple[RecordedReading, ...]]:
        """Yield slices of readings as they fall due, until every source has ended."""
        if self._started:
            raise RuntimeError("a Replay can be iterated only once; create a new one")
        self._started = True
        opened = (self._open_cursor(source) for source in self.sources)
        cursors = [cursor for cursor in opened if cursor is not None]
        clock = self.clock
        start_s = clock.monotonic()
        start_wall_ms = round(clock.time() * 1000)
        logger.info(
            "replay started: sources %s, speed %s, timestamps %s, loop %s",
            ", ".join(c.source.name for c in cursors) or "(none with readings)",
            "unlimited" if self.speed is None else self.speed,
            self.timestamps.value,
            self.loop,
        )

        # Heap of (due time, cursor position, reading), one head per source.
        heap: list[tuple[float, int, RecordedReading]] = []
        # The position in `cursors` keeps the order of `sources`, so at equal
        # due times the source given first is released first.
        for position, cursor in enumerate(cursors):
            first = next(cursor.readings)
            heapq.heappush(heap, (self._due(cursor, first), position, first))

        while heap:
            due = heap[0][0]
            if self.speed is None:
                horizon = math.inf
            else:
                elapsed = clock.monotonic() - start_s
                if due > elapsed + _EPSILON_S:
                    await clock.sleep(due - elapsed)
                    elapsed = clock.monotonic() - start_s
                # After a sleep for the head it is released even if the clock
                # woke a little early.
                horizon = max(elapsed, due) + _EPSILON_S

            batch: list[RecordedReading] = []
            while heap and heap[0][0] <= horizon and len(batch) < self.max_batch:
                _, position, reading = heapq.heappop(heap)
                cursor = cursors[position]
                batch.append(self._stamp(cursor, reading, start_wall_ms))
                following = self._advance(cursor)
                if following is not None:
                    heapq.heappush(
                        heap, (self._due(cursor, following), position, following)
                    )
            self.released += len(batch)
            yield tuple(batch)
            if self.speed is None:
                # Give other tasks a turn between slices.
                await clock.sleep(0)
        logger.info("replay finished: %d readings released", self.released)

    def _open_cursor(self, source: RecordedSource) -> _Cursor | None:
        readings = source.readings()
        first = next(readings, None)
        if first is None:
            logger.warning("replay source %s has no readings; skipped", source.name)
            return None
        # Put the first reading back in front of the rest.
        return _Cursor(
            source=source,
            readings=_prepend(first, readings),
            first_ms=first.timestamp_ms,
            last_ms=first.timestamp_ms,
        )

    def _due(self, cursor: _Cursor, reading: RecordedReading) -> float:
        """Return the due time of a reading, in seconds after the replay start."""
        offset_s = (reading.timestamp_ms - cursor.first_ms + cursor.shift_ms) / 1000
        return offset_s if self.speed is None else offset_s / self.speed

    def _stamp(
        self, cursor: _Cursor, reading: RecordedReading, start_wall_ms: int
    ) -> RecordedReading:
        if self.timestamps is TimestampMode.RECORDED or self.speed is None:
            return reading
        offset_ms = reading.timestamp_ms - cursor.first_ms + cursor.shift_ms
        # Built directly: dataclasses.replace costs several times as much, and
        # this runs once per replayed reading.
        return RecordedReading(
            reading.device,
            reading.quantity,
            start_wall_ms + round(offset_ms / self.speed),
            reading.value,
        )

    def _advance(self, cursor: _Cursor) -> RecordedReading | None:
        """Return the source's next reading, starting a new pass when looping."""
        following = next(cursor.readings, None)
        if following is not None:
            cursor.last_ms = following.timestamp_ms
            return following
        if not self.loop:
            return None
        # The next pass starts one step after the last reading of this one,
        # so stamps keep increasing across passes.
        span_ms = cursor.last_ms - cursor.first_ms + cursor.source.step_s * 1000
        cursor.shift_ms += span_ms
        cursor.readings = cursor.source.readings()
        cursor.passes += 1
        following = next(cursor.readings, None)
        if following is None:
            logger.warning(
                "replay source %s had no readings on pass %d; stopped",
                cursor.source.name,
                cursor.passes,
            )
            return None
        cursor.last_ms = following.timestamp_ms
        logger.info(
            "replay source %s: starting pass %d", cursor.source.name, cursor.passes
        )
        return following


def _prepend(
    first: RecordedReading, rest: Iterator[RecordedReading]
) -> Iterator[RecordedReading]:
    yield first
    yield from rest
