"""Time the W3 queries alone through a real `citymesh server`, optionally profiled.

`python -m bench.profile_queries [--gateways 40] [--days 7] [--requests 50]
[--rounds 1] [--settle-s 0] [--py-spy PREFIX] [--citymesh-src DIR]` starts the
server as `bench.run` does and backfills the fleet's first gateways over carbon
plaintext. Then it times each W3 request on one keep-alive connection, in
`--rounds` rounds over all queries, and prints the median p50 of each query
across rounds. With `--py-spy`, py-spy records the server during the timed
requests of the first round (raw collapsed stacks, one file per query).
"""

from __future__ import annotations

import argparse
import logging
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench import citymesh_server
from bench.citymesh_server import CitymeshServer
from bench.fleet import STEP_S, plaintext_load
from bench.procs import BenchError
from bench.systems import Query
from bench.workloads import ingest

logger = logging.getLogger(__name__)


def _time_query(
    server: CitymeshServer, query: Query, end_s: int, requests: int
) -> list[float]:
    path, params = server.w3_request(query, end_s - 7 * 86_400, end_s)
    for _ in range(3):
        server.client.get(path, params)
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        server.client.get(path, params)
        latencies.append((time.perf_counter() - started) * 1000)
    return sorted(latencies)


def _percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


def _start_py_spy(pid: int, prefix: Path, query: Query) -> subprocess.Popen[bytes]:
    """Start py-spy on the server, writing raw stacks to `<prefix>-<query>.txt`."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("py-spy is not installed")
    out = Path(f"{prefix}-{query.name.lower()}.txt")
    command = [py_spy, "record", "--rate", "1000", "--format", "raw"]
    command += ["--pid", str(pid), "--output", str(out)]
    spy = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(1.0)
    return spy


def main() -> None:
    """Parse arguments, load the fleet, time and optionally profile W3."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateways", type=int, default=40, help="fleet gateways")
    parser.add_argument("--days", type=int, default=7, help="days of 1-min points")
    parser.add_argument("--requests", type=int, default=50, help="timed requests")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds of timed requests over all queries, on the same loaded server",
    )
    parser.add_argument("--py-spy", type=Path, help="prefix of py-spy raw outputs")
    parser.add_argument(
        "--settle-s",
        type=float,
        default=0.0,
        help="seconds to wait after loading, so background compaction can finish",
    )
    parser.add_argument(
        "--citymesh-src",
        type=Path,
        help="profile this citymesh source tree instead of the installed package",
    )
    args = parser.parse_args()
    if args.citymesh_src:
        citymesh_server.SOURCE_DIR = args.citymesh_src.resolve()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    end_s = (int(time.time()) // STEP_S) * STEP_S - 5 * STEP_S
    load = plaintext_load(args.gateways, args.days * 1440, end_s, False, 2)
    server = CitymeshServer(mqtt_tenant="benchprofile")
    with tempfile.TemporaryDirectory(prefix="citymesh-profile-") as workdir:
        server.start(Path(workdir))
        try:
            loaded = ingest(server, load, timeout_s=1800)
            logger.info("loaded %d points in %.1f s", loaded.points, loaded.queryable_s)
            time.sleep(args.settle_s)
            print(f"machine: {platform.machine()}, {platform.python_version()}")
            p50s: dict[Query, list[float]] = {query: [] for query in Query}
            for round_number in range(1, args.rounds + 1):
                for query in Query:
                    spy = None
                    if args.py_spy is not None and round_number == 1:
                        spy = _start_py_spy(server.pid, args.py_spy, query)
                    latencies = _time_query(server, query, end_s, args.requests)
                    if spy is not None:
                        spy.send_signal(2)
                        spy.wait(timeout=30)
                    p50s[query].append(_percentile(latencies, 0.5))
                    print(
                        f"round {round_number}, {query.value}: "
                        f"p50 {_percentile(latencies, 0.5):.2f} ms, "
                        f"p95 {_percentile(latencies, 0.95):.2f} ms, "
                        f"min {latencies[0]:.2f} ms"
                    )
            if args.rounds > 1:
                for query, values in p50s.items():
                    print(
                        f"{query.value}: median p50 {statistics.median(values):.2f} ms"
                        f" over {args.rounds} rounds"
                        f" ({min(values):.2f}-{max(values):.2f})"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
