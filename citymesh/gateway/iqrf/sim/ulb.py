"""The ULB library deployment: 20 motes whose links and readings change over time.

The ULB Machine Learning Group placed 20 Tmote Sky motes in a library on
2006-12-01 and logged, for about five hours, each mote's temperature and
humidity and the RSSI at which it heard each neighbour, once a minute. The
radio power rose one step every 10 minutes, so the links strengthen during the
run. The files state no licence, so citymesh ships none of them: the
`ulb_library` scenario reads neighbors.txt and readings.txt from a folder that
the user gives.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from citymesh.errors import ConfigError
from citymesh.gateway.iqrf.sim.layout import FloorPlan, Place

logger = logging.getLogger(__name__)

NEIGHBORS = "neighbors.txt"
READINGS = "readings.txt"
# Each radio power level of the deployment lasted 10 one-minute sequences;
# a link's quality is taken over one such window.
WINDOW_S = 600.0
SEQUENCE_S = 60.0
# The logged value is taken as the CC2420 RSSI register, which reads dBm plus
# about 45. The data set's ReadMe calls this column "lqi", but its range
# (-51 to 13) fits the RSSI register and not the LQI (50 to 110).
RSSI_OFFSET_DBM = -45.0
# Estimated delivery against RSSI for the CC2420: a logistic curve with half
# the packets at -87 dBm, about 5 % at -93 dBm and 95 % at -81 dBm. The curve
# is an estimate and was not fitted to this deployment.
PRR_MIDPOINT_DBM = -87.0
PRR_WIDTH_DB = 2.0
# Column positions (0-based) in the two files.
N_TIME, N_REPORTER, N_NEIGHBOUR, N_RSSI = 0, 3, 4, 5
R_TIME, R_NODE, R_HUMIDITY, R_TEMPERATURE = 0, 1, 5, 6


def mote_key(mote: int) -> str:
    """Return the plan's place key of a ULB mote."""
    return f"mote-{mote}"


def delivery_from_rssi(dbm: float) -> float:
    """Return the estimated share of packets a CC2420 receives at this RSSI."""
    return 1.0 / (1.0 + math.exp(-(dbm - PRR_MIDPOINT_DBM) / PRR_WIDTH_DB))


@dataclass(frozen=True)
class UlbTimeline:
    """Per-window link qualities of the ULB motes, looped over the recording.

    A pair's quality in a window is the mean estimated delivery of the RSSI
    values logged for it (both directions) times the share of the window's
    minutes in which either mote logged the other. Recorded time starts at
    `start_offset_s`, runs at `speed` recorded seconds per simulated second
    and starts again at the end.
    """

    windows: tuple[dict[frozenset[str], float], ...]
    duration_s: float
    speed: float
    start_offset_s: float = 0.0

    def recorded_s(self, seconds: float) -> float:
        """Return the recorded time (seconds from the start) at a simulated time."""
        return (self.start_offset_s + seconds * self.speed) % self.duration_s

    def links_at(self, recorded_s: float) -> dict[frozenset[str], float]:
        """Return the link qualities in force at a recorded time."""
        index = int(recorded_s // WINDOW_S)
        return self.windows[max(0, min(index, len(self.windows) - 1))]

    def quality_at(self, a: str, b: str, seconds: float) -> float:
        """Return the quality between two places at a simulated time."""
        links = self.links_at(self.recorded_s(seconds))
        return links.get(frozenset((a, b)), 0.0)


@dataclass(frozen=True)
class UlbReadings:
    """Per-mote temperature and humidity, each a series sorted by time."""

    times: dict[int, list[float]]
    values: dict[int, dict[str, list[float]]]

    def reader(
        self, mote: int, quantity: str, timeline: UlbTimeline
    ) -> Callable[[float], float]:
        """Return the mote's latest logged value at each simulated time."""
        times = self.times[mote]
        series = self.values[mote][quantity]

        def read(seconds: float) -> float:
            index = bisect.bisect_right(times, timeline.recorded_s(seconds)) - 1
            return series[max(0, index)]

        return read


@dataclass(frozen=True)
class UlbDeployment:
    """The ULB motes as a floor plan, their link timeline and their readings."""

    plan: FloorPlan
    timeline: UlbTimeline
    readings: UlbReadings

    def best_connected(self) -> Place:
        """Return the mote with the highest link quality summed over the run."""
        totals: dict[str, float] = defaultdict(float)
        for links in self.timeline.windows:
            for pair, quality in links.items():
                for key in pair:
                    totals[key] += quality
        return max(self.plan.places, key=lambda p: (totals[p.key], p.key))


def _check_files(folder: Path) -> None:
    for name in (NEIGHBORS, READINGS):
        if not (folder / name).is_file():
            raise ConfigError(
                f"ULB library file {folder / name} not found; give the folder that "
                f"contains {NEIGHBORS} and {READINGS}"
            )


def _decimal(text: str) -> float:
    # readings.txt writes decimals with a comma (e.g. 23,2).
    return float(text.replace(",", "."))


T = TypeVar("T")


def _parse_lines(
    path: Path, parse: Callable[[list[str]], T], record_kind: str
) -> list[T]:
    """Parse every non-blank line of a space-separated file."""
    parsed = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            parsed.append(parse(fields))
        except (ValueError, IndexError) as exc:
            raise ConfigError(
                f"{path} line {number} is not a {record_kind}: {exc}"
            ) from exc
    return parsed


def _neighbour_record(fields: list[str]) -> tuple[float, int, int, float]:
    return (
        int(fields[N_TIME]) / 1000,
        int(fields[N_REPORTER]),
        int(fields[N_NEIGHBOUR]),
        float(fields[N_RSSI]) + RSSI_OFFSET_DBM,
    )


def _reading_record(fields: list[str]) -> tuple[float, int, float, float]:
    # Time stays absolute here; the caller makes it relative to the start.
    return (
        int(fields[R_TIME]) / 1000,
        int(fields[R_NODE]),
        _decimal(fields[R_TEMPERATURE]),
        _decimal(fields[R_HUMIDITY]),
    )


def load_ulb_library(
    folder: Path, speed: float, start_offset_s: float = 0.0
) -> UlbDeployment:
    """Read the ULB library's neighbour logs and readings from a folder.

    Raises:
        ConfigError: a file is missing or a line cannot be read.
    """
    _check_files(folder)
    path = folder / NEIGHBORS
    rows = _parse_lines(path, _neighbour_record, "neighbour record")
    if not rows:
        raise ConfigError(f"{path} contains no neighbour records")
    start = min(r[0] for r in rows)
    duration = max(WINDOW_S, max(r[0] for r in rows) - start)
    windows = _windows(rows, start, duration)
    timeline = UlbTimeline(windows, duration, speed, start_offset_s)
    readings = _load_readings(folder / READINGS, start)
    motes = sorted({r[1] for r in rows} | {r[2] for r in rows})
    places = tuple(Place(mote_key(m), 0.0, 0.0, "library") for m in motes)
    plan = FloorPlan("ulb-library", places, {}, source=str(folder))
    logger.info(
        "ULB library: %d motes, %d link windows of %g s read from %s",
        len(motes),
        len(timeline.windows),
        WINDOW_S,
        folder,
    )
    return UlbDeployment(plan, timeline, readings)


def _windows(
    rows: list[tuple[float, int, int, float]], start: float, duration: float
) -> tuple[dict[frozenset[str], float], ...]:
    count = math.ceil(duration / WINDOW_S)
    deliveries: list[dict[frozenset[str], list[float]]] = [
        defaultdict(list) for _ in range(count)
    ]
    minutes: list[dict[frozenset[str], set[int]]] = [
        defaultdict(set) for _ in range(count)
    ]
    for time_s, reporter, neighbour, dbm in rows:
        if reporter == neighbour:
            continue
        offset = time_s - start
        index = min(int(offset // WINDOW_S), count - 1)
        pair = frozenset((mote_key(reporter), mote_key(neighbour)))
        deliveries[index][pair].append(delivery_from_rssi(dbm))
        minutes[index][pair].add(int(offset // SEQUENCE_S))
    per_window = WINDOW_S / SEQUENCE_S
    windows = []
    for index in range(count):
        links = {}
        for pair, values in deliveries[index].items():
            heard = min(1.0, len(minutes[index][pair]) / per_window)
            links[pair] = round(heard * sum(values) / len(values), 4)
        windows.append(links)
    return tuple(windows)


def _load_readings(path: Path, start: float) -> UlbReadings:
    times: dict[int, list[float]] = defaultdict(list)
    values: dict[int, dict[str, list[float]]] = defaultdict(
        lambda: {"temperature": [], "humidity": []}
    )
    records = _parse_lines(path, _reading_record, "reading record")
    for time_s, mote, temperature, humidity in sorted(records):
        times[mote].append(time_s - start)
        values[mote]["temperature"].append(temperature)
        values[mote]["humidity"].append(humidity)
    return UlbReadings(dict(times), dict(values))
