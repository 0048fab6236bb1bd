"""Measure carbon plaintext ingest: points per second and bytes per point on disk.

Run: python bench/carbon_ingest.py [--series 10000] [--points 2000000]
A sender process writes `--points` lines (`--series` series, one point per
series per minute) over TCP to a CarbonListener in this process, which
appends them to a DuckDB file in a temporary directory. The rate covers
sending, parsing and appending; compaction and the file size are measured
after it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import socket
import tempfile
import time
from pathlib import Path

from citymesh.carbon.listener import CarbonListener
from citymesh.carbon.sink import CarbonSink
from citymesh.storage.duckdb_store import DuckDBStore

T0 = 1_700_000_000 // 3600 * 3600


def send(port: int, series: int, points: int) -> None:
    """Write the lines in 1 MB chunks, as a relay would."""
    rounds = points // series
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for minute in range(rounds):
            stamp = T0 + 60 * minute
            lines = [
                f"bench.host{i % 100}.metric{i} {(i * 7 + minute) % 1000 / 10}"
                f" {stamp}\n"
                for i in range(series)
            ]
            sock.sendall("".join(lines).encode())


async def run(series: int, points: int, directory: Path) -> None:
    store = DuckDBStore(directory / "bench.duckdb")
    sink = CarbonSink(store, "bench", "", queue_max_points=4_000_000)
    async with CarbonListener(sink, "127.0.0.1", 0, None, False) as listener:
        sender = multiprocessing.Process(
            target=send, args=(listener.ports.plaintext, series, points)
        )
        started = time.perf_counter()
        sender.start()
        while sink.stats.points_stored < points:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        sender.join()
    print(f"ingest: {points} points in {elapsed:.2f} s = {points / elapsed:,.0f}/s")
    started = time.perf_counter()
    while store.compact():
        pass
    print(f"compaction: {time.perf_counter() - started:.2f} s")
    store.close()
    size = (directory / "bench.duckdb").stat().st_size
    print(f"file: {size:,} bytes = {size / points:.3f} bytes/point")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=2_000_000)
    args = parser.parse_args()
    print(
        platform.platform(),
        platform.processor() or "",
        f"{multiprocessing.cpu_count()} cores",
    )
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(args.series, args.points, Path(directory)))


if __name__ == "__main__":
    main()
