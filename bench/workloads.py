"""W1 ingest, W2 backfill with disk use, and W3 queries, for any System."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.fleet import PlaintextLoad
from bench.procs import BenchError, dir_bytes
from bench.systems import Query, System

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.05


@dataclass(frozen=True, slots=True)
class IngestResult:
    """One ingest run: points sent, seconds until all were counted back."""

    points: int
    send_s: float
    queryable_s: float

    @property
    def points_per_s(self) -> float:
        """Return points per second until every point was queryable."""
        return self.points / self.queryable_s


def send_plaintext(port: int, load: PlaintextLoad) -> float:
    """Send each connection's chunks over its own TCP connection, in parallel.

    Returns the perf_counter time at which the last byte was handed to the
    kernel, so the listener has read all but its socket buffers.
    """
    errors: list[BaseException] = []

    def send(chunks: list[bytes]) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for chunk in chunks:
                    sock.sendall(chunk)
        except OSError as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=send, args=(chunks,), name=f"plaintext-{i}")
        for i, chunks in enumerate(load.connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"sending plaintext to port {port} failed: {errors[0]}")
    return time.perf_counter()


def ingest(system: System, load: PlaintextLoad, timeout_s: float) -> IngestResult:
    """Send `load` and wait until every point is counted back.

    The clock stops at the start of the first count query that returns the
    full number. A cheap probe of each connection's last point runs before
    the expensive count.
    """
    started = time.perf_counter()
    sent_at: list[float] = []
    sender = threading.Thread(
        target=lambda: sent_at.append(send_plaintext(system.plaintext_port, load)),
        name="sender",
    )
    sender.start()
    deadline = started + timeout_s
    pending = list(load.last_lines)
    while pending and time.perf_counter() < deadline:
        pending = [item for item in pending if not system.has_point(*item)]
        if pending:
            time.sleep(PROBE_INTERVAL_S)
    sender.join()
    if not sent_at:
        raise BenchError(f"{system.name}: sending the plaintext lines failed")
    send_s = sent_at[0] - started
    counted = -1
    while time.perf_counter() < deadline:
        asked = time.perf_counter()
        counted = system.count_points(load.start_s, load.end_s)
        if counted >= load.points:
            return IngestResult(load.points, send_s, asked - started)
        time.sleep(PROBE_INTERVAL_S)
    raise BenchError(
        f"{system.name}: {counted} of {load.points} points queryable after "
        f"{timeout_s:.0f} s"
    )


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Latencies of one W3 query in milliseconds."""

    query: Query
    latencies_ms: list[float]
    items: int

    @property
    def p50(self) -> float:
        """Return the median latency."""
        return float(np.percentile(self.latencies_ms, 50))

    @property
    def p95(self) -> float:
        """Return the 95th percentile latency."""
        return float(np.percentile(self.latencies_ms, 95))


def run_queries(
    system: System, end_s: int, requests: int, warmup: int = 3
) -> list[QueryResult]:
    """Time `requests` sequential requests of each W3 query on one connection."""
    results = []
    for query in Query:
        path, params = system.w3_request(query, end_s - 7 * 86_400, end_s)
        body = b""
        for _ in range(warmup):
            body = system.client.get(path, params)
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            body = system.client.get(path, params)
            latencies.append((time.perf_counter() - started) * 1000)
        results.append(QueryResult(query, latencies, system.w3_items(query, body)))
    return results


def disk_bytes_after_stop(system: System) -> int:
    """Compact, stop the system, and return the bytes of its data directory."""
    system.compact()
    data_dir: Path = system.data_dir
    system.stop()
    return dir_bytes(data_dir)
