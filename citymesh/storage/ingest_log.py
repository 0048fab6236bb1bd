"""Append-only log that makes the store's in-memory staging rows durable.

Every append is written as one record and fsynced before the store accepts
it. A record is a header (magic, row count, first sequence number, CRC-32 of
the payload) and the payload: the series ids as little-endian int32, then the
timestamps as int64, then the values as float64. Rows of one record have
consecutive sequence numbers. Records go to segment files named after their
first sequence number, and a segment is deleted once compaction has moved
every row in it into the database file.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from citymesh.errors import StorageError

logger = logging.getLogger(__name__)

MAGIC = b"CMI1"
HEADER = struct.Struct("<4sIQI")
# Bytes of one row in a record's payload: int32 id, int64 timestamp, float64.
ROW_BYTES = 20
# A new segment starts past this size, so deleting compacted rows frees disk
# space in steps of at most this much.
SEGMENT_BYTES = 64 * 1024 * 1024
SUFFIX = ".log"


@dataclass(frozen=True, slots=True)
class LogRecord:
    """Rows of one append, with the sequence number of the first row."""

    first_seq: int
    series_ids: npt.NDArray[np.int32]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    @property
    def last_seq(self) -> int:
        """Return the sequence number of the last row."""
        return self.first_seq + int(self.series_ids.size) - 1


class IngestLog:
    """Segment files of appended rows in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._segments: list[tuple[int, Path]] = sorted(
            (int(path.stem), path)
            for path in directory.glob(f"*{SUFFIX}")
            if path.stem.isdigit()
        )
        self._file: BinaryIO | None = None
        self._file_bytes = 0
        self.last_seq = 0
        """Sequence number of the last row written or replayed."""

    def replay(self, after_seq: int) -> Iterator[LogRecord]:
        """Yield the logged rows with a sequence number above `after_seq`.

        A record cut short by a crash ends its segment: the segment is
        truncated there, because the append it belonged to was never
        acknowledged.
        """
        for index, (_, path) in enumerate(self._segments):
            last_segment = index == len(self._segments) - 1
            for record in self._read_segment(path, last_segment):
                self.last_seq = max(self.last_seq, record.last_seq)
                if record.last_seq <= after_seq:
                    continue
                skip = max(0, after_seq + 1 - record.first_seq)
                yield LogRecord(
                    record.first_seq + skip,
                    record.series_ids[skip:],
                    record.timestamps[skip:],
                    record.values[skip:],
                )

    def _read_segment(self, path: Path, last_segment: bool) -> Iterator[LogRecord]:
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            record = _decode(data, offset)
            if record is None:
                break
            yield record[0]
            offset = record[1]
        if offset == len(data):
            return
        if last_segment:
            logger.warning(
                "truncating %s at byte %d of %d: the last record is incomplete, "
                "so its append was never acknowledged",
                path,
                offset,
                len(data),
            )
            with path.open("r+b") as file:
                file.truncate(offset)
                os.fsync(file.fileno())
            return
        logger.error(
            "ingest log segment %s is damaged at byte %d of %d; the rows after "
            "that byte are lost",
            path,
            offset,
            len(data),
        )

    def append(
        self,
        first_seq: int,
        series_ids: npt.NDArray[np.int32],
        timestamps: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Write one record and fsync it; raise StorageError when that fails."""
        count = int(series_ids.size)
        payload = b"".join(
            (
                series_ids.astype("<i4", copy=False).tobytes(),
                timestamps.astype("<i8", copy=False).tobytes(),
                values.astype("<f8", copy=False).tobytes(),
            )
        )
        header = HEADER.pack(MAGIC, count, first_seq, zlib.crc32(payload))
        try:
            file = self._writable(first_seq)
            file.write(header)
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        except OSError as exc:
            raise StorageError(
                f"writing {count} rows to the ingest log in {self.directory} "
                f"failed: {exc}"
            ) from exc
        self._file_bytes += len(header) + len(payload)
        self.last_seq = first_seq + count - 1

    def _writable(self, first_seq: int) -> BinaryIO:
        if self._file is not None and self._file_bytes < SEGMENT_BYTES:
            return self._file
        if self._file is not None:
            self._file.close()
        path = self.directory / f"{first_seq:020d}{SUFFIX}"
        self._file = path.open("ab")
        self._file_bytes = self._file.tell()
        self._segments.append((first_seq, path))
        _fsync_directory(self.directory)
        return self._file

    def release(self, compacted_seq: int) -> None:
        """Delete the segments whose rows all have a seq of at most compacted_seq."""
        removed = False
        while self._segments:
            if len(self._segments) > 1:
                done = self._segments[1][0] - 1 <= compacted_seq
            else:
                done = self.last_seq <= compacted_seq
            if not done:
                break
            _, path = self._segments.pop(0)
            if not self._segments and self._file is not None:
                self._file.close()
                self._file = None
                self._file_bytes = 0
            path.unlink(missing_ok=True)
            removed = True
        if removed:
            _fsync_directory(self.directory)

    def clear(self) -> None:
        """Delete every segment."""
        self.close()
        for _, path in self._segments:
            path.unlink(missing_ok=True)
        self._segments.clear()
        _fsync_directory(self.directory)

    def close(self) -> None:
        """Close the segment being written."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self._file_bytes = 0


def _decode(data: bytes, offset: int) -> tuple[LogRecord, int] | None:
    """Return the record at `offset` and the offset after it, or None if invalid."""
    if len(data) - offset < HEADER.size:
        return None
    magic, count, first_seq, crc = HEADER.unpack_from(data, offset)
    start = offset + HEADER.size
    end = start + count * ROW_BYTES
    if magic != MAGIC or end > len(data):
        return None
    payload = memoryview(data)[start:end]
    if zlib.crc32(payload) != crc:
        return None
    ids_end = count * 4
    stamps_end = ids_end + count * 8
    record = LogRecord(
        first_seq,
        np.frombuffer(payload[:ids_end], "<i4").astype(np.int32),
        np.frombuffer(payload[ids_end:stamps_end], "<i8").astype(np.int64),
        np.frombuffer(payload[stamps_end:], "<f8").astype(np.float64),
    )
    return record, end


def _fsync_directory(directory: Path) -> None:
    """Make the creation or removal of a segment file durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
