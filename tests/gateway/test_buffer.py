"""The durable reading buffer: commits, acknowledgements, bounds, full disks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from citymesh.gateway.buffer import ReadingBuffer
from citymesh.gateway.encoding import BatchEncoder
from citymesh.gateway.sources import RecordedReading
from citymesh.protocol.messages import ReadingsBatch, decode

ENCODER = BatchEncoder("t1", "lab", "gw-1")
START_MS = 1_420_070_400_000


def _readings(count: int, start: int = 0) -> list[RecordedReading]:
    return [
        RecordedReading("room-1", "co2", START_MS + (start + n) * 1000, float(n))
        for n in range(count)
    ]


def _open(
    path: Path, max_bytes: int = 64 * 1024 * 1024, **kwargs: object
) -> ReadingBuffer:
    return ReadingBuffer(path, max_bytes=max_bytes, max_age_s=0, **kwargs)  # type: ignore[arg-type]


def test_buffer_batch_payload_is_valid_protocol(tmp_path: Path) -> None:
    buffer = _open(tmp_path / "b.sqlite")
    buffer.append(_readings(5))
    batch = buffer.form_batch(0, buffer.last_id, 100, ENCODER)
    assert batch is not None
    decoded = decode(batch.payload, ReadingsBatch, 1 << 20)
    assert decoded.seq == 0
    assert decoded.point_count() == 5
    assert decoded.series[0].points[0] == (START_MS, 0.0)


def test_buffer_ack_deletes_only_that_batch(tmp_path: Path) -> None:
    buffer = _open(tmp_path / "b.sqlite")
    buffer.append(_readings(10))
    first = buffer.form_batch(0, buffer.last_id, 4, ENCODER)
    assert first is not None
    second = buffer.form_batch(first.last_id, buffer.last_id, 4, ENCODER)
    assert second is not None
    buffer.acknowledge(second)
    assert buffer.count == 6
    assert buffer.unacked_count == 1


def test_buffer_reopen_resends_same_sequence(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = _open(path)
    buffer.append(_readings(10))
    batch = buffer.form_batch(0, buffer.last_id, 4, ENCODER)
    assert batch is not None
    buffer.close()

    reopened = _open(path)
    (again,) = reopened.unacked(ENCODER)
    assert again.seq == batch.seq
    assert again.payload == batch.payload
    assert reopened.next_seq == 1
    # New batches skip the range of the unacknowledged one.
    rest = reopened.form_batch(0, reopened.last_id, 100, ENCODER)
    assert rest is not None
    assert (rest.first_id, rest.last_id, rest.points) == (5, 10, 6)


def test_buffer_ids_never_reused_after_empty(tmp_path: Path) -> None:
    buffer = _open(tmp_path / "b.sqlite")
    buffer.append(_readings(3))
    batch = buffer.form_batch(0, buffer.last_id, 10, ENCODER)
    assert batch is not None
    buffer.acknowledge(batch)
    buffer.append(_readings(2, start=3))
    assert buffer.last_id == 5


def test_buffer_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from citymesh.gateway.buffer import ReadingBuffer
        from citymesh.gateway.sources import RecordedReading
        buffer = ReadingBuffer(Path({str(path)!r}), 1 << 26, 0)
        for n in range(50):
            buffer.append([RecordedReading("room-1", "co2", {START_MS} + n, 1.0)])
        os.kill(os.getpid(), 9)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == -9
    assert _open(path).count == 50


def test_buffer_byte_limit_drops_oldest_counted(tmp_path: Path) -> None:
    buffer = _open(tmp_path / "b.sqlite", max_bytes=64 * 1024)
    appended = 0
    for chunk in range(100):
        buffer.append(_readings(100, start=chunk * 100))
        appended += 100
    assert buffer.dropped_total > 0
    assert buffer.count + buffer.dropped_total == appended
    # What is left is the newest readings, without holes.
    batch = buffer.form_batch(0, buffer.last_id, appended, ENCODER)
    assert batch is not None
    stamps = [
        p[0] for p in decode(batch.payload, ReadingsBatch, 1 << 24).series[0].points
    ]
    assert stamps == [
        START_MS + n * 1000 for n in range(buffer.dropped_total, appended)
    ]
    episode = buffer.end_drop_episode()
    assert episode is not None
    assert episode.count == buffer.dropped_total
    assert episode.first_ms == START_MS


def test_buffer_age_limit_drops_expired(tmp_path: Path) -> None:
    now = [START_MS]
    buffer = ReadingBuffer(
        tmp_path / "b.sqlite", max_bytes=1 << 26, max_age_s=60, clock=lambda: now[0]
    )
    buffer.append(_readings(5))
    now[0] += 61_000
    buffer.append(_readings(3, start=5))
    assert buffer.dropped_total == 5
    assert buffer.count == 3


def test_buffer_file_size_limit_no_crash(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes writes past 256 KiB fail with EFBIG, as a full disk
    # would; the buffer must drop its oldest readings and keep going.
    path = tmp_path / "b.sqlite"
    script = textwrap.dedent(
        f"""
        import json, resource
        from pathlib import Path
        from citymesh.gateway.buffer import ReadingBuffer
        from citymesh.gateway.sources import RecordedReading
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
        buffer = ReadingBuffer(Path({str(path)!r}), 1 << 30, 0)
        appended = 0
        for chunk in range(300):
            buffer.append([
                RecordedReading("room-1", "co2", {START_MS} + chunk * 100 + n, 1.0)
                for n in range(100)
            ])
            appended += 100
        print(json.dumps({{"appended": appended, "count": buffer.count,
                          "dropped": buffer.dropped_total}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout)
    assert counts["dropped"] > 0
    assert counts["count"] + counts["dropped"] == counts["appended"]
    # The oldest readings went, never the incoming ones.
    dropped_incoming = "no space" in result.stderr
    assert not dropped_incoming
