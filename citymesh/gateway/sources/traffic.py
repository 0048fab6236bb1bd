"""Reader of the hourly I-94 westbound vehicle counts (UCI Metro Interstate)."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
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

FOLDER = "traffic_i94"
FILE = "Metro_Interstate_Traffic_Volume.csv"
ZONE = ZoneInfo("America/Chicago")
STEP_S = 3600
QUANTITY = "vehicles"
DEVICE = "i94-atr301"


def traffic_devices() -> list[DeviceInfo]:
    """Describe the single counting station."""
    return [
        DeviceInfo(
            device=DEVICE,
            name="I-94 westbound, MnDOT ATR station 301, Minneapolis-St Paul",
            sensors=[SensorInfo(quantity=QUANTITY, step_s=STEP_S)],
        )
    ]


def read_traffic_file(path: Path) -> Iterator[RecordedRow]:
    """Yield one row per line of the file, duplicated hours included."""
    with open_text(path) as stream:
        reader = csv.DictReader(stream)
        for record in reader:
            try:
                local = datetime.fromisoformat(record["date_time"])
                volume = float(record["traffic_volume"])
            except (KeyError, ValueError) as exc:
                raise RecordingFormatError(path, reader.line_num, repr(exc)) from exc
            timestamp_ms = local_to_utc_ms(local, ZONE)
            yield RecordedRow(DEVICE, timestamp_ms, ((QUANTITY, volume),))


def open_traffic(folder: Path, selection: SourceFilter | None = None) -> RecordedSource:
    """Open the traffic source; hours with several weather rows are kept once."""
    return RecordedSource(
        "traffic",
        traffic_devices(),
        lambda: read_traffic_file(folder / FILE),
        selection,
    )
