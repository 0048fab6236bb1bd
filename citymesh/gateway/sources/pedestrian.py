"""Reader of the City of Melbourne hourly pedestrian counts, November 2014."""

from __future__ import annotations

import csv
import logging
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
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

FOLDER = "pedestrian_melbourne"
COUNTS_FILE = "pedestrian_counts_nov2014.csv"
LOCATIONS_FILE = "Pedestrian_sensor_locations.csv"
ZONE = ZoneInfo("Australia/Melbourne")
STEP_S = 3600
QUANTITY = "pedestrians"
# Sensor ids lie in [0, MAX_SENSOR_IDS); the November 2014 file uses 1 to 39.
MAX_SENSOR_IDS = 1 << 16

# English month abbreviations of the `DD-Mon-YYYY` dates. strptime's %b
# depends on the process locale, so the table is spelled out.
MONTH_NAMES = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, start=1)}


@dataclass(frozen=True, slots=True)
class SensorLocation:
    """A counter of the locations file: id, description and WGS84 position."""

    sensor_id: int
    description: str
    latitude: float
    longitude: float


def device_id(sensor_id: int) -> str:
    """Return the citymesh device id of a Melbourne sensor."""
    return f"ped-{sensor_id}"


def read_locations(path: Path) -> dict[int, SensorLocation]:
    """Read the sensor locations file, keyed by sensor id."""
    locations: dict[int, SensorLocation] = {}
    with open_text(path) as stream:
        reader = csv.DictReader(stream)
        for record in reader:
            try:
                location = SensorLocation(
                    sensor_id=int(record["Sensor ID"]),
                    description=record["Sensor Description"].strip(),
                    latitude=float(record["Latitude"]),
                    longitude=float(record["Longitude"]),
                )
            except (KeyError, ValueError) as exc:
                raise RecordingFormatError(path, reader.line_num, repr(exc)) from exc
            locations[location.sensor_id] = location
    return locations


def _parse_date(text: str) -> tuple[int, int, int]:
    day, month, year = text.split("-")
    return int(year), MONTHS[month], int(day)


@dataclass(frozen=True, slots=True)
class PedestrianCounts:
    """The counts of the file in time order, packed into arrays.

    Row i is sensor `sensor_ids[i]` counting `counts[i]` pedestrians in the
    hour that starts at `timestamps_ms[i]`. The arrays take 18 bytes a
    row, where tuples of Python objects took about 260 (the file has 24,492
    rows), so a gateway keeps the data set in memory cheaply.
    """

    timestamps_ms: array[int]
    sensor_ids: array[int]
    counts: array[float]

    def rows(self) -> Iterator[RecordedRow]:
        """Yield the rows in time order, then sensor order."""
        for timestamp_ms, sensor_id, count in zip(
            self.timestamps_ms, self.sensor_ids, self.counts, strict=True
        ):
            yield RecordedRow(device_id(sensor_id), timestamp_ms, ((QUANTITY, count),))


def read_counts(path: Path) -> tuple[PedestrianCounts, dict[int, str]]:
    """Read the counts file: counts sorted by time and sensor, and sensor names.

    The file is only roughly in date order, so the rows are sorted. The sort
    is stable, so of two rows for the same sensor and hour the first in the
    file stays first and RecordedSource keeps it.
    """
    timestamps: array[int] = array("q")
    sensor_ids: array[int] = array("H")
    counts: array[float] = array("d")
    names: dict[int, str] = {}
    with open_text(path) as stream:
        reader = csv.DictReader(stream)
        for record in reader:
            try:
                sensor_id = int(record["SensorID"])
                if not 0 <= sensor_id < MAX_SENSOR_IDS:
                    raise ValueError(f"sensor id {sensor_id} is out of range")
                year, month, day = _parse_date(record["Date"])
                local = datetime(year, month, day, int(record["Hour"]))
                count = float(record["PedestrianCount"])
                name = record["SensorName"].strip()
            except (KeyError, ValueError) as exc:
                raise RecordingFormatError(path, reader.line_num, repr(exc)) from exc
            names.setdefault(sensor_id, name)
            # The count is for the hour that starts at `local`.
            timestamps.append(local_to_utc_ms(local, ZONE))
            sensor_ids.append(sensor_id)
            counts.append(count)
    # One integer key per row sorts by time, then sensor, with a fraction of
    # the transient memory of (time, sensor) tuples.
    order = sorted(
        range(len(timestamps)),
        key=lambda i: timestamps[i] * MAX_SENSOR_IDS + sensor_ids[i],
    )
    packed = PedestrianCounts(
        array("q", (timestamps[i] for i in order)),
        array("H", (sensor_ids[i] for i in order)),
        array("d", (counts[i] for i in order)),
    )
    return packed, names


def pedestrian_devices(
    names: dict[int, str], locations: dict[int, SensorLocation]
) -> list[DeviceInfo]:
    """Describe each counted sensor, with its position where the file has one."""
    devices = []
    for sensor_id in sorted(names):
        location = locations.get(sensor_id)
        if location is None:
            logger.debug("pedestrian sensor %d has no location", sensor_id)
        devices.append(
            DeviceInfo(
                device=device_id(sensor_id),
                name=f"Melbourne pedestrian counter {sensor_id}: {names[sensor_id]}",
                latitude=None if location is None else location.latitude,
                longitude=None if location is None else location.longitude,
                sensors=[SensorInfo(quantity=QUANTITY, step_s=STEP_S)],
            )
        )
    return devices


def open_pedestrian(
    folder: Path, selection: SourceFilter | None = None
) -> RecordedSource:
    """Open the pedestrian source, one device per sensor, parsed once in memory."""
    counts, names = read_counts(folder / COUNTS_FILE)
    locations = read_locations(folder / LOCATIONS_FILE)
    devices = pedestrian_devices(names, locations)
    return RecordedSource("pedestrian", devices, counts.rows, selection)
