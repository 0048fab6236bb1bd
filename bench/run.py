"""Run the benchmark suite: `python -m bench.run --quick` or `--full`.

Installs the peers' Debian packages when missing, starts every system on
127.0.0.1 with data under one temporary directory, runs W1-W5 on the same
generated fleet, prints the results and appends them to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import bench.citymesh_server as citymesh_server
from bench.citymesh_server import CitymeshServer
from bench.fleet import STEP_S, plaintext_load
from bench.gateway_load import run_gateway, startup_rss
from bench.mqtt_load import build_history, latency, throughput
from bench.peers import Graphite, InfluxDB, VictoriaMetrics, ensure_packages
from bench.procs import BenchError, Process
from bench.report import Results
from bench.systems import System
from bench.workloads import disk_bytes_after_stop, ingest, run_queries

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
PLAINTEXT_CONNECTIONS = 2


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each workload does in one run."""

    runs: int
    w1_gateways: int
    w1_points: int
    w2_gateways: int
    w2_points: int
    w3_requests: int
    w4_messages_per_gateway: int
    w4_points_per_series: int
    w4_latency_s: float
    w5_warmup_s: float
    w5_window_s: float


FULL = Sizes(
    runs=3,
    w1_gateways=300,  # 9,000 series
    w1_points=240,
    w2_gateways=40,  # 1,200 series
    w2_points=7 * 1440,
    w3_requests=50,
    w4_messages_per_gateway=2,
    w4_points_per_series=33,  # 990 readings a message, as the agent batches 1000
    w4_latency_s=60.0,
    w5_warmup_s=10.0,
    w5_window_s=60.0,
)
QUICK = Sizes(
    runs=1,
    w1_gateways=30,
    w1_points=60,
    w2_gateways=4,
    w2_points=1440,
    w3_requests=20,
    w4_messages_per_gateway=1,
    w4_points_per_series=10,
    w4_latency_s=20.0,
    w5_warmup_s=5.0,
    w5_window_s=15.0,
)


def _peers(names: list[str]) -> list[System]:
    classes = {"victoriametrics": VictoriaMetrics, "influxdb": InfluxDB}
    classes["graphite"] = Graphite
    return [classes[name]() for name in names if name in classes]


def run_store_workloads(
    systems: list[System], sizes: Sizes, workdir: Path, results: Results
) -> None:
    """Run W1, W2 with disk use, and W3 on every system, interleaved per run."""
    end_s = (int(time.time()) // STEP_S) * STEP_S - 5 * STEP_S
    logger.info("preparing the W1 and W2 plaintext lines")
    w1 = plaintext_load(
        sizes.w1_gateways, sizes.w1_points, end_s, True, PLAINTEXT_CONNECTIONS
    )
    w2 = plaintext_load(
        sizes.w2_gateways, sizes.w2_points, end_s, False, PLAINTEXT_CONNECTIONS
    )
    for run in range(sizes.runs):
        for system in systems:
            where = workdir / f"run{run}" / system.name
            logger.info("run %d: %s W1 (%d points)", run + 1, system.name, w1.points)
            system.start(where / "w1")
            try:
                one = ingest(system, w1, timeout_s=1800)
            finally:
                system.stop()
            results.add(
                "W1 ingest, until queryable",
                system.name,
                one.points_per_s,
                "points/s",
                True,
            )
            results.add(
                "W1 ingest, until sent",
                system.name,
                one.points / one.send_s,
                "points/s",
                True,
            )

            logger.info("run %d: %s W2 (%d points)", run + 1, system.name, w2.points)
            system.start(where / "w2")
            try:
                two = ingest(system, w2, timeout_s=3600)
                results.add(
                    "W2 backfill, until queryable",
                    system.name,
                    two.points_per_s,
                    "points/s",
                    True,
                )
                for query in run_queries(system, w2.end_s, sizes.w3_requests):
                    label = f"W3 {query.query.value}"
                    results.add(f"{label} p50", system.name, query.p50, "ms", False)
                    results.add(f"{label} p95", system.name, query.p95, "ms", False)
                    results.notes[f"{system.name} {query.query.value}"] = str(
                        query.items
                    )
                disk = disk_bytes_after_stop(system)
            finally:
                system.stop()
            results.add("W2 disk", system.name, disk / w2.points, "bytes/point", False)


def run_mqtt_workloads(
    sizes: Sizes, workdir: Path, results: Results, profile: Path | None
) -> None:
    """Run W4 throughput and push latency on one citymesh server per run."""
    for run in range(sizes.runs):
        tenant = f"bench{os.getpid()}r{run}"
        messages, readings = build_history(
            tenant, 300, sizes.w4_messages_per_gateway, sizes.w4_points_per_series
        )
        server = CitymeshServer(tenant, gateways=300)
        server.start(workdir / f"run{run}" / "w4")
        spy = None
        if profile is not None and run == 0:
            spy = _start_profile(server.pid, profile)
        try:
            logger.info("run %d: W4 throughput (%d readings)", run + 1, readings)
            result = throughput(server, messages, readings)
            if spy is not None:
                spy.popen.send_signal(signal.SIGINT)
                spy.popen.wait(60)
            if result.counted_back != readings:
                raise BenchError(
                    f"W4: counted back {result.counted_back} of {readings} readings"
                )
            results.add(
                "W4 MQTT end to end",
                "citymesh",
                result.readings_per_s,
                "readings/s",
                True,
            )
            logger.info("run %d: W4 push latency at the city load", run + 1)
            pushed = latency(
                server,
                300,
                10.0,
                sizes.w4_latency_s,
                first_seq=sizes.w4_messages_per_gateway + 1,
            )
            results.add(
                "W4 push latency p50", "citymesh", pushed.percentile(50), "ms", False
            )
            results.add(
                "W4 push latency p99", "citymesh", pushed.percentile(99), "ms", False
            )
            results.add(
                "W4 readings pushed / published",
                "citymesh",
                pushed.pushed / pushed.published,
                "fraction",
                True,
            )
        finally:
            server.stop()


def _start_profile(pid: int, output: Path) -> Process:
    output.parent.mkdir(parents=True, exist_ok=True)
    return Process(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "100",
            "--nonblocking",
            "--output",
            str(output),
        ],
        output.with_suffix(".log"),
    )


def summarize_profile(path: Path, top: int = 12) -> str:
    """Return the functions with the most samples, inclusive, from a raw py-spy file."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for frame in set(stack.split(";")):
            inclusive[frame] += count
    rows = [
        f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)
    ]
    return "\n".join(rows)


def run_gateway_workload(sizes: Sizes, workdir: Path, results: Results) -> None:
    """Run W5 once per run."""
    for run in range(sizes.runs):
        logger.info("run %d: W5 gateway at 1,000 readings/s", run + 1)
        result = run_gateway(
            workdir / f"run{run}" / "w5", 1000.0, sizes.w5_warmup_s, sizes.w5_window_s
        )
        results.add(
            "W5 gateway rate", "citymesh", result.readings_per_s, "readings/s", True
        )
        results.add("W5 gateway RSS max", "citymesh", result.rss_max_mb, "MiB", False)
        results.add(
            "W5 gateway CPU", "citymesh", result.cpu_percent, "% of one core", False
        )
        idle = startup_rss(workdir / f"run{run}" / "w5-idle")
        results.add("W5 gateway RSS idle", "citymesh", idle, "MiB", False)


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, "
        f"{platform.platform()}, Python {platform.python_version()}"
    )


def _mosquitto_version() -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "mosquitto"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the chosen workloads, print and append the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--quick",
        action="store_true",
        help="a few-minute smoke run, 1 run of small loads",
    )
    mode.add_argument("--full", action="store_true", help="the full loads, 3 runs each")
    parser.add_argument(
        "--runs", type=int, help="runs per figure (default 3 full, 1 quick)"
    )
    parser.add_argument(
        "--systems",
        default="citymesh,victoriametrics,influxdb,graphite",
        help="comma-separated systems for W1-W3",
    )
    parser.add_argument(
        "--workloads", default="w1,w4,w5", help="w1 (W1-W3), w4 and w5; comma-separated"
    )
    parser.add_argument(
        "--citymesh-src",
        type=Path,
        help="benchmark this citymesh source tree instead of the installed package",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy raw profile of the first W4 throughput run"
    )
    parser.add_argument(
        "--no-append", action="store_true", help=f"print only; do not append to {DOC}"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )

    sizes = FULL if args.full else QUICK
    if args.runs:
        sizes = Sizes(
            **{
                **{f: getattr(sizes, f) for f in sizes.__dataclass_fields__},
                "runs": args.runs,
            }
        )
    if args.citymesh_src:
        citymesh_server.SOURCE_DIR = args.citymesh_src.resolve()
    names = [n.strip().lower() for n in args.systems.split(",") if n.strip()]
    workloads = {w.strip().lower() for w in args.workloads.split(",")}
    ensure_packages()

    results = Results()
    systems: list[System] = []
    if "citymesh" in names:
        if citymesh_server.carbon_available():
            systems.append(CitymeshServer(f"bench{os.getpid()}"))
        else:
            logger.warning(
                "this citymesh has no [carbon] listener: W1-W3 run on the peers only"
            )
    systems.extend(_peers(names))
    versions = {s.name: s.version() for s in systems}
    versions.setdefault("citymesh", CitymeshServer("x").version())
    versions["Mosquitto"] = _mosquitto_version()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="citymesh-bench-") as tmp:
        workdir = Path(tmp)
        if "w1" in workloads and systems:
            run_store_workloads(systems, sizes, workdir, results)
        if "w4" in workloads:
            run_mqtt_workloads(sizes, workdir, results, args.profile)
        if "w5" in workloads:
            run_gateway_workload(sizes, workdir, results)
    elapsed = time.monotonic() - started

    columns = ["citymesh", *[s.name for s in systems if s.name != "citymesh"]]
    command = "python -m bench.run " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    report = _report(command, sizes, versions, results, columns, elapsed)
    print(report)
    if not args.no_append:
        with DOC.open("a") as doc:
            doc.write("\n" + report + "\n")
    if args.profile and args.profile.exists():
        print("\nW4 throughput profile of the citymesh server (inclusive samples):")
        print(summarize_profile(args.profile))
    return 0


def _report(
    command: str,
    sizes: Sizes,
    versions: dict[str, str],
    results: Results,
    columns: list[str],
    elapsed: float,
) -> str:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    version_text = ", ".join(f"{k} {v}" for k, v in versions.items())
    lines = [
        f"## Run of {today}",
        "",
        f"- Command: `{command}` ({elapsed / 60:.0f} min)",
        f"- Machine: {_machine()}",
        f"- Versions: {version_text}",
        f"- Runs per figure: {sizes.runs}; cells are median (min-max), and "
        "`xr` after a peer's figure is citymesh's median divided by the peer's.",
        f"- Loads: W1 {sizes.w1_gateways * 30:,} series x {sizes.w1_points} points; "
        f"W2 {sizes.w2_gateways * 30:,} series x {sizes.w2_points:,} points; "
        f"W3 {sizes.w3_requests} requests per query; W4 300 gateways x "
        f"{sizes.w4_messages_per_gateway} messages of "
        f"{sizes.w4_points_per_series * 30} readings, latency over "
        f"{sizes.w4_latency_s:.0f} s at 900 readings/s; "
        f"W5 {sizes.w5_window_s:.0f} s at 1,000 readings/s.",
        "- W3 query paths: citymesh and Graphite through /render and /metrics/find; "
        f"VictoriaMetrics: {VictoriaMetrics.query_api}; "
        f"InfluxDB: {InfluxDB.query_api}.",
        "",
        results.table(columns),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
