"""The generated sensor fleet that every system under test receives.

Series are named `city.<district>.<gateway>.<node>.<quantity>`: 30 districts of
10 gateways, 10 nodes per gateway and 3 quantities make 9,000 series. Values
vary slowly as real room and street sensors do (a daily cycle, a per-node
offset and a small random walk) and are quantised to the resolution of common
sensors, so compression works on realistic data. Points are 1 minute apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SEED = 20_241_107
STEP_S = 60
DISTRICTS = 30
GATEWAYS_PER_DISTRICT = 10
NODES_PER_GATEWAY = 10
QUANTITIES = ("temperature", "humidity", "co2")
# Printed decimals per quantity: 0.01 °C, 0.1 %RH and 1 ppm are the resolutions
# of common sensors (Sensirion SHT3x, SCD30).
DECIMALS = {"temperature": 2, "humidity": 1, "co2": 0}
TENANT = "city"


@dataclass(frozen=True, slots=True)
class SeriesId:
    """One series of the fleet."""

    district: int
    gateway: int
    node: int
    quantity: str

    @property
    def district_id(self) -> str:
        """Return the district node, e.g. `d03`."""
        return f"d{self.district:02d}"

    @property
    def gateway_id(self) -> str:
        """Return the gateway id, unique in the fleet, e.g. `g031`."""
        return f"g{self.gateway:03d}"

    @property
    def node_id(self) -> str:
        """Return the node id within its gateway, e.g. `n07`."""
        return f"n{self.node:02d}"

    def name(self, tenant: str = TENANT) -> str:
        """Return the dotted series name under `tenant`."""
        return (
            f"{tenant}.{self.district_id}.{self.gateway_id}.{self.node_id}."
            f"{self.quantity}"
        )


def fleet(gateways: int) -> list[SeriesId]:
    """Return the series of the first `gateways` gateways, gateway by gateway."""
    out = []
    for gateway in range(gateways):
        district = gateway // GATEWAYS_PER_DISTRICT
        for node in range(NODES_PER_GATEWAY):
            for quantity in QUANTITIES:
                out.append(SeriesId(district, gateway, node, quantity))
    return out


def series_count(gateways: int) -> int:
    """Return the number of series of `gateways` gateways."""
    return gateways * NODES_PER_GATEWAY * len(QUANTITIES)


def values(
    series: SeriesId, timestamps_s: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Return the quantised values of one series at the given Unix times."""
    index = QUANTITIES.index(series.quantity)
    rng = np.random.default_rng([SEED, series.gateway, series.node, index])
    day = 2 * np.pi * (timestamps_s % 86_400) / 86_400
    walk = np.cumsum(rng.normal(0.0, 1.0, timestamps_s.size))
    walk -= np.linspace(0.0, walk[-1], walk.size) if walk.size else 0.0
    if series.quantity == "temperature":
        raw = 18.0 + rng.uniform(-3, 3) + 4.0 * np.sin(day - 2.0) + 0.03 * walk
    elif series.quantity == "humidity":
        raw = 55.0 + rng.uniform(-10, 10) - 12.0 * np.sin(day - 2.0) + 0.1 * walk
        raw = np.clip(raw, 5.0, 100.0)
    else:
        occupied = np.clip(np.sin(day - 1.6), 0.0, None)
        raw = 430.0 + rng.uniform(0, 60) + 500.0 * occupied + 2.0 * walk
        raw = np.clip(raw, 380.0, None)
    return np.round(raw, DECIMALS[series.quantity])


def time_axis(end_s: int, points: int) -> npt.NDArray[np.int64]:
    """Return `points` Unix times at STEP_S, the last one at `end_s`."""
    start = end_s - (points - 1) * STEP_S
    return np.arange(start, end_s + 1, STEP_S, dtype=np.int64)


def _lines(series: SeriesId, timestamps: npt.NDArray[np.int64]) -> list[str]:
    prefix = series.name() + " "
    fmt = "%." + str(DECIMALS[series.quantity]) + "f"
    vals = values(series, timestamps).tolist()
    return [
        f"{prefix}{fmt % v} {t}\n"
        for v, t in zip(vals, timestamps.tolist(), strict=True)
    ]


def _chunks(lines: Iterator[str], chunk_bytes: int = 1 << 20) -> list[bytes]:
    chunks: list[bytes] = []
    buffer: list[str] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line)
        if size >= chunk_bytes:
            chunks.append("".join(buffer).encode())
            buffer, size = [], 0
    if buffer:
        chunks.append("".join(buffer).encode())
    return chunks


@dataclass(frozen=True, slots=True)
class PlaintextLoad:
    """Carbon plaintext lines prepared before timing, split across connections."""

    connections: list[list[bytes]]
    """Chunks of lines for each connection, sent in order."""
    points: int
    series: list[SeriesId]
    start_s: int
    end_s: int
    last_lines: list[tuple[str, int]]
    """The series and time of the last line on each connection."""


def plaintext_load(
    gateways: int, points: int, end_s: int, time_major: bool, connections: int
) -> PlaintextLoad:
    """Build the lines of `points` per series for the first `gateways` gateways.

    time_major orders lines minute by minute across all series, as live
    gateways report; otherwise series by series, as a backfill sends history.
    Series are dealt to connections round-robin by gateway.
    """
    series = fleet(gateways)
    timestamps = time_axis(end_s, points)
    per_connection: list[list[SeriesId]] = [[] for _ in range(connections)]
    for item in series:
        per_connection[item.gateway % connections].append(item)
    out: list[list[bytes]] = []
    last: list[tuple[str, int]] = []
    for members in per_connection:
        lines = [_lines(item, timestamps) for item in members]
        if time_major:
            ordered: Iterator[str] = (
                lines[s][t] for t in range(points) for s in range(len(members))
            )
        else:
            ordered = (line for per_series in lines for line in per_series)
        out.append(_chunks(ordered))
        last.append((members[-1].name(), int(timestamps[-1])))
    return PlaintextLoad(
        out,
        len(series) * points,
        series,
        int(timestamps[0]),
        int(timestamps[-1]),
        last,
    )
