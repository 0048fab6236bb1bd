"""Tests of the replay clock, with a fake clock and once in real time."""

from __future__ import annotations

import asyncio
import itertools
import math
import time

import pytest

from citymesh.errors import ConfigError
from citymesh.gateway.replay import Replay, SystemClock, TimestampMode
from citymesh.gateway.sources import (
    RecordedReading,
    RecordedRow,
    RecordedSource,
    open_source,
)
from citymesh.protocol.messages import DeviceInfo, SensorInfo

WALL_START_S = 1_700_000_000.0
WALL_START_MS = 1_700_000_000_000

# First recorded times, looked up in the files and converted to UTC.
ROOM_1_FIRST_MS = 1_422_883_140_000  # datatest.txt 2015-02-02 14:19:00 Brussels
PED_22_FIRST_MS = 1_414_616_400_000  # 30-Oct-2014 08:00 Melbourne


class FakeClock:
    """A clock whose sleeps advance time at once, by the requested amount plus a lag."""

    def __init__(self, lag_s: float = 0.0) -> None:
        self.now = 0.0
        self.lag_s = lag_s
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return WALL_START_S + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.now += seconds + self.lag_s
        await asyncio.sleep(0)


def memory_source(name: str, times_s: list[int], step_s: int = 60) -> RecordedSource:
    """Build a one-device source whose value equals the recorded second."""
    device = DeviceInfo(
        device=f"{name}-1", sensors=[SensorInfo(quantity="binary", step_s=step_s)]
    )
    rows = [
        RecordedRow(
            device.device, 1_600_000_000_000 + t * 1000, (("binary", float(t)),)
        )
        for t in times_s
    ]
    return RecordedSource(name, [device], lambda: rows)


async def collect(
    replay: Replay, clock: FakeClock | SystemClock, max_readings: int = 10_000
) -> list[tuple[float, tuple[RecordedReading, ...]]]:
    """Return (clock time, slice) pairs until the replay ends or enough arrived."""
    received: list[tuple[float, tuple[RecordedReading, ...]]] = []
    count = 0
    async for batch in replay.batches():
        received.append((clock.monotonic(), batch))
        count += len(batch)
        if count >= max_readings:
            break
    return received


async def test_replay_paces_each_source_from_own_start() -> None:
    clock = FakeClock()
    room = open_source("occupancy", devices=["room-1"], limit=3)
    street = open_source("pedestrian", devices=["ped-22"], limit=2)
    replay = Replay([room, street], speed=600, clock=clock)

    received = await collect(replay, clock)

    times = [at for at, _ in received]
    assert times == pytest.approx([0.0, 0.1, 0.2, 6.0], abs=1e-9)
    assert clock.sleeps == pytest.approx([0.1, 0.1, 5.8], abs=1e-9)
    first_slice = received[0][1]
    # Both sources start at once: the first room row (6 quantities) and the
    # first pedestrian count, room first because it was given first.
    assert [r.device for r in first_slice] == ["room-1"] * 6 + ["ped-22"]
    assert first_slice[0].timestamp_ms == ROOM_1_FIRST_MS
    assert first_slice[6].timestamp_ms == PED_22_FIRST_MS
    assert first_slice[6].value == 2175.0
    assert [len(batch) for _, batch in received] == [7, 6, 6, 1]
    assert received[3][1][0].timestamp_ms == PED_22_FIRST_MS + 3_600_000
    assert replay.released == 20


async def test_replay_now_stamps_follow_schedule() -> None:
    clock = FakeClock()
    traffic = open_source("traffic", limit=3)
    replay = Replay([traffic], speed=600, timestamps="now", clock=clock)

    received = await collect(replay, clock)

    stamps = [r.timestamp_ms for _, batch in received for r in batch]
    # One recorded hour is 6 s at speed 600.
    assert stamps == [WALL_START_MS, WALL_START_MS + 6_000, WALL_START_MS + 12_000]
    values = [r.value for _, batch in received for r in batch]
    assert values == [5545.0, 4516.0, 4767.0]


async def test_replay_now_stamps_ignore_clock_jitter() -> None:
    clock = FakeClock(lag_s=0.037)
    room = open_source("occupancy", devices=["room-1"], limit=4)
    replay = Replay([room], speed=600, timestamps=TimestampMode.NOW, clock=clock)

    received = await collect(replay, clock)

    stamps = sorted({r.timestamp_ms for _, batch in received for r in batch})
    assert stamps == [WALL_START_MS + offset for offset in (0, 100, 200, 300)]
    # Each wake-up is late, but readings are never released before they are due.
    for at, batch in received:
        due = (batch[0].timestamp_ms - WALL_START_MS) / 1000
        assert at >= due - 1e-9


async def test_replay_late_wakeup_releases_all_due() -> None:
    clock = FakeClock(lag_s=0.25)
    source = memory_source("mem", [0, 60, 120, 180, 240])
    replay = Replay([source], speed=600, clock=clock)

    received = await collect(replay, clock)

    # The replay sleeps for the reading due at 0.1 s but wakes at 0.35 s, so
    # the readings due at 0.2 s and 0.3 s go out in the same slice. The next
    # wake-up is at 0.65 s.
    assert [[r.value for r in batch] for _, batch in received] == [
        [0],
        [60, 120, 180],
        [240],
    ]
    assert [at for at, _ in received] == pytest.approx([0.0, 0.35, 0.65], abs=1e-9)


async def test_replay_recorded_mode_keeps_timestamps() -> None:
    clock = FakeClock()
    source = memory_source("mem", [0, 30, 90])
    replay = Replay([source], speed=60, clock=clock)

    received = await collect(replay, clock)

    stamps = [r.timestamp_ms for _, batch in received for r in batch]
    assert stamps == [1_600_000_000_000, 1_600_000_030_000, 1_600_000_090_000]
    assert [at for at, _ in received] == pytest.approx([0.0, 0.5, 1.5], abs=1e-9)


async def test_replay_unlimited_speed_never_waits() -> None:
    clock = FakeClock()
    room = open_source("occupancy", devices=["room-1"], limit=10)
    street = open_source("pedestrian", devices=["ped-22"], limit=3)
    replay = Replay([room, street], speed=None, max_batch=16, clock=clock)

    received = await collect(replay, clock)

    assert clock.now == 0.0
    assert all(seconds == 0 for seconds in clock.sleeps)
    assert [len(batch) for _, batch in received] == [16, 16, 16, 15]
    readings = [r for _, batch in received for r in batch]
    assert len(readings) == 63
    # Merged by offset from each source's start: the pedestrian counts at
    # 0 h, 1 h and 2 h come after every room row (the 10 rows span 9 min).
    assert [r.device for r in readings[:7]] == ["room-1"] * 6 + ["ped-22"]
    assert [r.device for r in readings[-2:]] == ["ped-22", "ped-22"]


async def test_replay_max_batch_splits_due_slice() -> None:
    clock = FakeClock()
    room = open_source("occupancy", devices=["room-1"], limit=1)
    replay = Replay([room], speed=600, max_batch=4, clock=clock)

    received = await collect(replay, clock)

    assert [len(batch) for _, batch in received] == [4, 2]
    assert clock.sleeps == []


async def test_replay_loop_continues_timeline() -> None:
    clock = FakeClock()
    source = memory_source("mem", [0, 60, 120])
    replay = Replay([source], speed=600, timestamps="now", loop=True, clock=clock)

    received = await collect(replay, clock, max_readings=8)

    readings = [r for _, batch in received for r in batch]
    # A pass spans 120 s plus one 60 s step, 300 ms at speed 600.
    assert [r.timestamp_ms - WALL_START_MS for r in readings] == [
        0,
        100,
        200,
        300,
        400,
        500,
        600,
        700,
    ]
    assert [r.value for r in readings] == [0, 60, 120, 0, 60, 120, 0, 60]
    assert [at for at, _ in received] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], abs=1e-9
    )


async def test_replay_loop_sources_keep_own_period() -> None:
    clock = FakeClock()
    short = memory_source("short", [0, 60])
    long = memory_source("long", [0, 60, 120, 180])
    replay = Replay([short, long], speed=600, timestamps="now", loop=True, clock=clock)

    received = await collect(replay, clock, max_readings=12)

    stamps: dict[str, list[int]] = {}
    for _, batch in received:
        for reading in batch:
            stamps.setdefault(reading.device, []).append(
                reading.timestamp_ms - WALL_START_MS
            )
    assert stamps["short-1"] == [0, 100, 200, 300, 400, 500]
    assert stamps["long-1"] == [0, 100, 200, 300, 400, 500]


async def test_replay_skips_empty_source() -> None:
    clock = FakeClock()
    empty = open_source("traffic", limit=0)
    room = open_source("occupancy", devices=["room-2"], limit=2)
    replay = Replay([empty, room], speed=600, clock=clock)

    received = await collect(replay, clock)

    assert [len(batch) for _, batch in received] == [6, 6]


async def test_replay_without_readings_ends() -> None:
    clock = FakeClock()
    replay = Replay([open_source("traffic", limit=0)], clock=clock)
    assert await collect(replay, clock) == []


async def test_replay_single_readings_iteration() -> None:
    clock = FakeClock()
    source = memory_source("mem", [0, 60, 120])
    replay = Replay([source], speed=600, clock=clock)

    values = [reading.value async for reading in replay]

    assert values == [0, 60, 120]
    assert clock.now == pytest.approx(0.2, abs=1e-9)


async def test_replay_iterated_twice_raises() -> None:
    clock = FakeClock()
    replay = Replay([memory_source("mem", [0])], clock=clock)
    await collect(replay, clock)
    with pytest.raises(RuntimeError, match="only once"):
        await collect(replay, clock)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"speed": -1.0}, "invalid replay speed"),
        ({"speed": math.nan}, "invalid replay speed"),
        ({"speed": math.inf}, "invalid replay speed"),
        ({"timestamps": "local"}, "choose one of recorded, now"),
        ({"timestamps": "now", "speed": None}, "need a positive speed"),
        ({"timestamps": "now", "speed": 0}, "need a positive speed"),
        ({"loop": True}, "loop needs timestamps 'now'"),
        ({"max_batch": 0}, "max_batch"),
    ],
)
def test_replay_invalid_settings_raise(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Replay([], **arguments)  # type: ignore[arg-type]


async def test_replay_real_clock_short_slice() -> None:
    # Speed 36,000: one recorded hour every 0.1 s, so 5 hours take 0.4 s.
    traffic = open_source("traffic", limit=5)
    replay = Replay([traffic], speed=36_000, timestamps="now")
    started = time.monotonic()
    wall_started_ms = time.time() * 1000

    arrivals: list[float] = []
    readings: list[RecordedReading] = []
    async for batch in replay.batches():
        arrivals.append(time.monotonic() - started)
        readings.extend(batch)
    elapsed = time.monotonic() - started

    assert [r.value for r in readings] == [5545.0, 4516.0, 4767.0, 5026.0, 4918.0]
    stamps = [r.timestamp_ms for r in readings]
    assert [b - a for a, b in itertools.pairwise(stamps)] == [100, 100, 100, 100]
    assert abs(stamps[0] - wall_started_ms) < 50
    # asyncio may run a timer up to one clock resolution early, so allow 5 ms.
    for index, arrival in enumerate(arrivals):
        assert arrival >= index * 0.1 - 0.005
    assert 0.39 <= elapsed < 2.0
