"""Group commit of accepted readings: batching, chunking and back-pressure."""

from __future__ import annotations

import asyncio

from citymesh.gateway.intake import Intake
from citymesh.gateway.sources import RecordedReading

START_MS = 1_420_070_400_000


def _readings(count: int, start: int = 0) -> list[RecordedReading]:
    return [
        RecordedReading("room-1", "co2", START_MS + (start + n) * 1000, float(n))
        for n in range(count)
    ]


class _Recorder:
    """A commit function that records each transaction's readings."""

    def __init__(self) -> None:
        self.commits: list[list[RecordedReading]] = []

    async def __call__(self, readings: list[RecordedReading]) -> None:
        self.commits.append(readings)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _run_intake(intake: Intake) -> asyncio.Task[None]:
    task = asyncio.create_task(intake.run())
    await _settle()
    return task


async def test_intake_first_slice_committed_at_once() -> None:
    recorder = _Recorder()
    intake = Intake(recorder, interval_s=60, max_commit=1000, max_pending=10_000)
    task = await _run_intake(intake)
    await intake.put(_readings(3))
    await _settle()
    task.cancel()
    assert recorder.commits == [_readings(3)]
    assert intake.pending == 0


async def test_intake_groups_slices_within_interval() -> None:
    recorder = _Recorder()
    intake = Intake(recorder, interval_s=60, max_commit=1000, max_pending=10_000)
    task = await _run_intake(intake)
    await intake.put(_readings(2))
    await _settle()
    # The interval has not passed, so these wait for one commit together.
    await intake.put(_readings(2, start=2))
    await intake.put(_readings(2, start=4))
    await _settle()
    assert len(recorder.commits) == 1
    assert intake.pending == 4
    await intake.flush()
    task.cancel()
    grouped = _readings(2, start=2) + _readings(2, start=4)
    assert recorder.commits == [_readings(2), grouped]


async def test_intake_zero_interval_commits_each_slice() -> None:
    recorder = _Recorder()
    intake = Intake(recorder, interval_s=0, max_commit=1000, max_pending=10_000)
    task = await _run_intake(intake)
    for start in range(0, 6, 2):
        await intake.put(_readings(2, start=start))
        await _settle()
    task.cancel()
    assert recorder.commits == [_readings(2, start=s) for s in range(0, 6, 2)]


async def test_intake_flush_splits_at_max_commit() -> None:
    recorder = _Recorder()
    intake = Intake(recorder, interval_s=60, max_commit=4, max_pending=10_000)
    await intake.put(_readings(10))
    await intake.flush()
    assert [len(c) for c in recorder.commits] == [4, 4, 2]
    assert [r for c in recorder.commits for r in c] == _readings(10)
    assert intake.pending == 0


async def test_intake_put_waits_at_max_pending() -> None:
    recorder = _Recorder()
    intake = Intake(recorder, interval_s=60, max_commit=1000, max_pending=5)
    await intake.put(_readings(5))
    blocked = asyncio.create_task(intake.put(_readings(1, start=5)))
    await _settle()
    assert not blocked.done()
    assert intake.pending == 5
    await intake.flush()
    await _settle()
    assert blocked.done()
    assert intake.pending == 1
