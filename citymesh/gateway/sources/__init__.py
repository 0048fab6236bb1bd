"""Recorded data sets read as device readings, selected by source name."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from citymesh.errors import ConfigError
from citymesh.gateway.sources import occupancy, pedestrian, traffic
from citymesh.gateway.sources.base import (
    ReadStats,
    RecordedReading,
    RecordedRow,
    RecordedSource,
    RecordingFormatError,
    SourceFilter,
    local_to_utc_ms,
)

logger = logging.getLogger(__name__)

__all__ = [
    "SOURCE_NAMES",
    "ReadStats",
    "RecordedReading",
    "RecordedRow",
    "RecordedSource",
    "RecordingFormatError",
    "SourceFilter",
    "default_data_dir",
    "local_to_utc_ms",
    "open_source",
]

_Opener = Callable[[Path, SourceFilter | None], RecordedSource]

# Source name -> (folder under the data directory, opener).
_SOURCES: dict[str, tuple[str, _Opener]] = {
    "occupancy": (occupancy.FOLDER, occupancy.open_occupancy),
    "pedestrian": (pedestrian.FOLDER, pedestrian.open_pedestrian),
    "traffic": (traffic.FOLDER, traffic.open_traffic),
}
SOURCE_NAMES = tuple(_SOURCES)


def default_data_dir() -> Path:
    """Return the directory of the data sets shipped in citymesh.data."""
    # citymesh.data uses only the standard library, so the gateway may load it.
    from citymesh.data import data_dir

    return data_dir()


def open_source(
    name: str,
    *,
    devices: Iterable[str] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    offset: int = 0,
    limit: int | None = None,
    data_dir: Path | None = None,
) -> RecordedSource:
    """Open a recorded source by name, optionally restricted to a slice.

    Args:
        name: one of SOURCE_NAMES.
        devices: device ids to keep, or None for every device.
        start_ms: first UTC time to keep, inclusive.
        end_ms: UTC time to stop at, exclusive.
        offset: rows to skip after the other filters.
        limit: maximum number of rows to emit per pass.
        data_dir: directory with the data set folders, by default citymesh.data.

    Raises:
        ConfigError: the name, a device or the slice is invalid.
        FileNotFoundError: a data file is missing.
    """
    try:
        folder, opener = _SOURCES[name]
    except KeyError:
        raise ConfigError(
            f"unknown replay source {name!r}; known sources: {', '.join(SOURCE_NAMES)}"
        ) from None
    selection = SourceFilter(
        devices=None if devices is None else frozenset(devices),
        start_ms=start_ms,
        end_ms=end_ms,
        offset=offset,
        limit=limit,
    )
    root = default_data_dir() if data_dir is None else data_dir
    source = opener(root / folder, selection)
    logger.info(
        "opened replay source %s from %s: %d devices",
        name,
        root / folder,
        len(source.devices),
    )
    return source
