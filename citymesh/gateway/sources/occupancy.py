"""Reader of the UCI Occupancy Detection recordings of one office room."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from citymesh.gateway.sources.base import (
    RecordedRow,
    RecordedSource,
    RecordingFormatError,
    SourceFilter,
    local_to_utc_ms,
    open_text,
)
from citymesh.protocol.messages import DeviceInfo, SensorInfo

logger = logging.getLogger(__name__)

FOLDER = "occupancy_uci"
ZONE = ZoneInfo("Europe/Brussels")
STEP_S = 60

# Header column -> catalogue quantity, in the order of the file.
COLUMNS = (
    ("Temperature", "temperature"),
    ("Humidity", "humidity"),
    ("Light", "light"),
    ("CO2", "co2"),
    ("HumidityRatio", "humidity_ratio"),
    ("Occupancy", "occupancy"),
)
HEADER = ("date", *(column for column, _ in COLUMNS))

# The three files are three recording periods of the same room. Devices are
# numbered in time order.
ROOMS = (
    ("room-1", "datatest.txt", "2015-02-02 to 2015-02-04"),
    ("room-2", "datatraining.txt", "2015-02-04 to 2015-02-10"),
    ("room-3", "datatest2.txt", "2015-02-11 to 2015-02-18"),
)


def occupancy_devices() -> list[DeviceInfo]:
    """Describe the three recordings as devices with six sensors each."""
    sensors = [SensorInfo(quantity=q, step_s=STEP_S) for _, q in COLUMNS]
    return [
        DeviceInfo(
            device=device,
            name=f"UMONS office room, Mons, Belgium: recording {period} ({file})",
            sensors=sensors,
        )
        for device, file, period in ROOMS
    ]


def _round_to_minute(local: datetime) -> datetime:
    # The room's data logger stamps a sample at :00 or :59 seconds. Rounding to the
    # nearest minute puts every file on an exact 60 s grid.
    minute = local.replace(second=0, microsecond=0)
    if local.second >= 30:
        minute += timedelta(minutes=1)
    return minute


def read_occupancy_file(path: Path, device: str) -> Iterator[RecordedRow]:
    """Yield the rows of one UCI occupancy file in file order."""
    with open_text(path) as stream:
        reader = csv.reader(stream)
        header = tuple(next(reader, ()))
        if header != HEADER:
            raise RecordingFormatError(path, 1, f"unexpected header {header!r}")
        for fields in reader:
            line = reader.line_num
            # Data rows carry an unnamed row number before the named columns.
            if len(fields) != len(HEADER) + 1:
                raise RecordingFormatError(
                    path, line, f"expected {len(HEADER) + 1} fields, got {len(fields)}"
                )
            try:
                local = datetime.fromisoformat(fields[1])
                values = tuple(
                    (quantity, float(text))
                    for (_, quantity), text in zip(COLUMNS, fields[2:], strict=True)
                )
            except ValueError as exc:
                raise RecordingFormatError(path, line, str(exc)) from exc
            timestamp_ms = local_to_utc_ms(_round_to_minute(local), ZONE)
            yield RecordedRow(device, timestamp_ms, values)


def open_occupancy(
    folder: Path, selection: SourceFilter | None = None
) -> RecordedSource:
    """Open the occupancy source: rooms 1 to 3 one after the other in time."""

    def rows() -> Iterator[RecordedRow]:
        requested = None if selection is None else selection.devices
        for device, file, _ in ROOMS:
            if requested is None or device in requested:
                yield from read_occupancy_file(folder / file, device)

    return RecordedSource("occupancy", occupancy_devices(), rows, selection)
