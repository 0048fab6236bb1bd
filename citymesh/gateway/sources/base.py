"""Value objects and the shared reading pipeline of recorded sources."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from citymesh.errors import CitymeshError, ConfigError
from citymesh.protocol.messages import DeviceInfo

logger = logging.getLogger(__name__)


class RecordingFormatError(CitymeshError, ValueError):
    """A recorded data file does not have the expected layout."""

    def __init__(self, path: Path, line: int, detail: str) -> None:
        super().__init__(f"{path}:{line}: {detail}")
        self.path = path
        self.line = line
        self.detail = detail


@dataclass(frozen=True, slots=True)
class RecordedReading:
    """One value of one quantity of one device, at a UTC time in ms."""

    device: str
    quantity: str
    timestamp_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class RecordedRow:
    """All values one device recorded at one time, as (quantity, value) pairs."""

    device: str
    timestamp_ms: int
    values: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class SourceFilter:
    """Selection applied to a source: devices, a time window and a row slice.

    `start_ms` is inclusive and `end_ms` exclusive. `offset` and `limit` count
    rows (one device at one time, which may carry several quantities) in
    output order, after the device and time filters and duplicate removal.
    """

    devices: frozenset[str] | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    offset: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ConfigError(f"invalid source offset {self.offset}: use 0 or more")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"invalid source limit {self.limit}: use 0 or more")
        if (
            self.start_ms is not None
            and self.end_ms is not None
            and self.end_ms <= self.start_ms
        ):
            raise ConfigError(
                f"invalid source window: end_ms {self.end_ms} is not after "
                f"start_ms {self.start_ms}"
            )


@dataclass(slots=True)
class ReadStats:
    """Counters of the latest pass over a source."""

    rows_read: int = 0
    rows_emitted: int = 0
    duplicates: int = 0
    """Rows dropped because their device already had a row at that time."""
    out_of_order: int = 0
    """Rows dropped because their time is before the device's previous row."""


RowFactory = Callable[[], Iterable[RecordedRow]]


class RecordedSource:
    """A recorded data set that yields readings in time order, pass after pass.

    Each call of `readings()` or `rows()` starts a new pass from the first
    row, so a replay can loop. Within a pass, timestamps never decrease. For
    each device only the first row at a given time is kept: later rows at the
    same time count as duplicates and rows earlier than the device's previous
    row count as out of order. Both are dropped.
    """

    def __init__(
        self,
        name: str,
        devices: Sequence[DeviceInfo],
        row_factory: RowFactory,
        selection: SourceFilter | None = None,
    ) -> None:
        self.name = name
        self.selection = selection or SourceFilter()
        known = {d.device for d in devices}
        requested = self.selection.devices
        if requested is not None:
            unknown = sorted(requested - known)
            if unknown:
                raise ConfigError(
                    f"source {name!r} has no device {', '.join(unknown)}; "
                    f"known devices: {', '.join(sorted(known))}"
                )
        self.devices: tuple[DeviceInfo, ...] = tuple(
            d for d in devices if requested is None or d.device in requested
        )
        self.stats = ReadStats()
        self._row_factory = row_factory

    @property
    def step_s(self) -> int:
        """Return the shortest nominal sampling step of the selected sensors."""
        steps = [s.step_s for d in self.devices for s in d.sensors]
        return min(steps, default=60)

    def rows(self) -> Iterator[RecordedRow]:
        """Yield the selected rows of a new pass and count them in `stats`."""
        stats = ReadStats()
        self.stats = stats
        selection = self.selection
        last_ms: dict[str, int] = {}
        skipped = 0
        emitted = 0
        for row in self._row_factory():
            if selection.devices is not None and row.device not in selection.devices:
                continue
            stats.rows_read += 1
            previous = last_ms.get(row.device)
            if previous is not None and row.timestamp_ms <= previous:
                if row.timestamp_ms == previous:
                    stats.duplicates += 1
                else:
                    stats.out_of_order += 1
                    logger.warning(
                        "source %s: dropped row of %s at %d ms, before its "
                        "previous row at %d ms",
                        self.name,
                        row.device,
                        row.timestamp_ms,
                        previous,
                    )
                continue
            last_ms[row.device] = row.timestamp_ms
            if selection.start_ms is not None and row.timestamp_ms < selection.start_ms:
                continue
            if selection.end_ms is not None and row.timestamp_ms >= selection.end_ms:
                continue
            if skipped < selection.offset:
                skipped += 1
                continue
            if selection.limit is not None and emitted >= selection.limit:
                break
            emitted += 1
            stats.rows_emitted = emitted
            yield row
        logger.debug(
            "source %s: pass done, %d rows read, %d emitted, %d duplicates, "
            "%d out of order",
            self.name,
            stats.rows_read,
            stats.rows_emitted,
            stats.duplicates,
            stats.out_of_order,
        )

    def readings(self) -> Iterator[RecordedReading]:
        """Yield the readings of a new pass, one per quantity of each row."""
        for row in self.rows():
            for quantity, value in row.values:
                yield RecordedReading(row.device, quantity, row.timestamp_ms, value)


def open_text(path: Path) -> TextIO:
    """Open a data file for reading, or its gzip-compressed `.gz` sibling."""
    if path.exists():
        return path.open(encoding="utf-8", newline="")
    packed = path.with_name(path.name + ".gz")
    if packed.exists():
        return gzip.open(packed, "rt", encoding="utf-8", newline="")
    raise FileNotFoundError(f"data file {path} (or {packed.name}) not found")


def local_to_utc_ms(local: datetime, zone: ZoneInfo) -> int:
    """Convert a naive local time in `zone` to UTC milliseconds since the epoch.

    Times around daylight-saving changes follow fold=0 of PEP 495. A time that
    occurs twice (clocks go back) is read as its first occurrence, in daylight
    time. A time that does not exist (clocks go forward) is read with the
    offset in force before the change, so it lands after the jump: 02:30 on
    the spring-forward day in America/Chicago becomes 03:30 daylight time.
    When that collides with the next recorded time, the duplicate removal of
    RecordedSource drops the later row.
    """
    aware = local.replace(tzinfo=zone, fold=0)
    return round(aware.timestamp() * 1000)
