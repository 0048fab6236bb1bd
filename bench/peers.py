"""The peers: VictoriaMetrics, InfluxDB 1.x, and carbon-cache with graphite-web.

Each runs from its Debian package on 127.0.0.1, on free ports (never the
defaults 2003, 8086 or 8428), with its data under the run's temporary
directory, and is stopped by PID.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.fleet import STEP_S, TENANT
from bench.procs import BenchError, Process, free_port, wait_for_port, wait_stable_size
from bench.systems import (
    FIND_PATTERN,
    ONE_SERIES,
    SUMMARY_DISTRICT,
    SUMMARY_QUANTITY,
    GraphiteApi,
    Query,
    System,
)

logger = logging.getLogger(__name__)

APT_PACKAGES = ("victoria-metrics", "influxdb", "graphite-carbon", "graphite-web")
# graphite-web is a WSGI application; gunicorn serves it as in production.
APT_EXTRA = ("gunicorn",)
SYSTEM_PYTHON = "/usr/bin/python3"
START_TIMEOUT_S = 60.0


def package_version(package: str) -> str:
    """Return the installed Debian version of `package`."""
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "not installed"


def ensure_packages() -> None:
    """Install the peers' Debian packages that are missing (needs root)."""
    missing = [
        p for p in (*APT_PACKAGES, *APT_EXTRA) if package_version(p) == "not installed"
    ]
    if not missing:
        return
    logger.info("installing %s", " ".join(missing))
    subprocess.run(["apt-get", "update"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *missing],
        check=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/bin"},
    )


def _series_regex(district: str, quantity: str) -> str:
    return f"{TENANT}[.]{district}[.][^.]+[.][^.]+[.]{quantity}"


class VictoriaMetrics(System):
    """Single-node VictoriaMetrics with its Graphite plaintext listener."""

    name = "VictoriaMetrics"
    query_api = "Prometheus API (query_range, avg_over_time); Graphite /metrics/find"

    def __init__(self) -> None:
        super().__init__()
        self._process: Process | None = None

    def version(self) -> str:
        """Return the Debian package version."""
        return package_version("victoria-metrics")

    def start(self, workdir: Path) -> None:
        """Start victoria-metrics on free HTTP and Graphite ports."""
        self.data_dir = workdir / "vm-data"
        self.http_port = free_port()
        self.plaintext_port = free_port()
        self._process = Process(
            [
                "victoria-metrics",
                f"-storageDataPath={self.data_dir}",
                f"-httpListenAddr=127.0.0.1:{self.http_port}",
                f"-graphiteListenAddr=127.0.0.1:{self.plaintext_port}",
                "-retentionPeriod=1y",
                # Serve points up to now and never from a stale result cache,
                # so a count query returns every point as soon as it is stored.
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-loggerLevel=WARN",
            ],
            workdir / "vm.log",
        )
        wait_for_port(self.http_port, START_TIMEOUT_S, self._process)
        wait_for_port(self.plaintext_port, START_TIMEOUT_S, self._process)

    def _stop_processes(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _instant(self, query: str, at_s: int) -> list[Any]:
        body = self.client.get_json(
            "/api/v1/query", {"query": query, "time": str(at_s)}
        )
        result: list[Any] = body["data"]["result"]
        return result

    def has_point(self, name: str, timestamp_s: int) -> bool:
        """Tell whether a one-second window ending at the point counts it."""
        result = self._instant(
            f'count_over_time({{__name__="{name}"}}[1s])', timestamp_s
        )
        return bool(result) and float(result[0]["value"][1]) >= 1

    def count_points(self, start_s: int, end_s: int) -> int:
        """Sum count_over_time over every fleet series."""
        window = end_s - start_s + 1
        query = f'sum(count_over_time({{__name__=~"{TENANT}[.].+"}}[{window}s]))'
        result = self._instant(query, end_s)
        return int(float(result[0]["value"][1])) if result else 0

    def compact(self) -> None:
        """Flush in-memory parts, force a merge of all partitions, wait for quiet."""
        self.client.get("/internal/force_flush")
        self.client.get("/internal/force_merge")
        wait_stable_size(self.data_dir, quiet_s=3.0, timeout_s=120.0)

    def w3_request(
        self, query: Query, start_s: int, end_s: int
    ) -> tuple[str, dict[str, Any]]:
        """Return the Prometheus-API equivalent of each Graphite query."""
        if query is Query.FIND:
            return "/metrics/find", {"query": FIND_PATTERN}
        if query is Query.ONE_SERIES:
            return "/api/v1/query_range", {
                "query": f'{{__name__="{ONE_SERIES}"}}',
                "start": str(end_s - 86_400 + STEP_S),
                "end": str(end_s),
                "step": f"{STEP_S}s",
            }
        regex = _series_regex(SUMMARY_DISTRICT, SUMMARY_QUANTITY)
        return "/api/v1/query_range", {
            "query": f'avg_over_time({{__name__=~"{regex}"}}[1h])',
            "start": str(end_s - 7 * 86_400 + 3600),
            "end": str(end_s),
            "step": "1h",
        }

    def w3_items(self, query: Query, body: bytes) -> int:
        """Count values in a matrix, or nodes for find."""
        decoded = json.loads(body)
        if query is Query.FIND:
            return len(decoded)
        return sum(len(series["values"]) for series in decoded["data"]["result"])


INFLUX_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  # Short cold durations, so the compaction that InfluxDB does after hours of
  # quiet happens within the benchmark's wait.
  cache-snapshot-write-cold-duration = "2s"
  compact-full-write-cold-duration = "5s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[logging]
  level = "warn"

[[graphite]]
  enabled = true
  bind-address = "127.0.0.1:{plaintext_port}"
  protocol = "tcp"
  database = "bench"
  batch-size = 5000
  batch-pending = 10
  batch-timeout = "1s"
  templates = ["measurement.district.gateway.node.field"]
"""


class InfluxDB(System):
    """InfluxDB 1.x with its Graphite input; a fleet series becomes a field."""

    name = "InfluxDB"
    query_api = "InfluxQL (SELECT ... GROUP BY time(1h); SHOW SERIES)"

    def __init__(self) -> None:
        super().__init__()
        self._process: Process | None = None

    def version(self) -> str:
        """Return the Debian package version."""
        return package_version("influxdb")

    def start(self, workdir: Path) -> None:
        """Start influxd with a generated configuration."""
        self.data_dir = workdir / "influxdb"
        self.data_dir.mkdir(parents=True)
        self.http_port = free_port()
        self.plaintext_port = free_port()
        config = workdir / "influxdb.conf"
        config.write_text(
            INFLUX_CONFIG.format(
                root=self.data_dir,
                rpc_port=free_port(),
                http_port=self.http_port,
                plaintext_port=self.plaintext_port,
            )
        )
        self._process = Process(
            ["influxd", "run", "-config", str(config)], workdir / "influxdb.log"
        )
        wait_for_port(self.http_port, START_TIMEOUT_S, self._process)
        wait_for_port(self.plaintext_port, START_TIMEOUT_S, self._process)

    def _stop_processes(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _select(self, query: str) -> list[Any]:
        body = self.client.get_json("/query", {"db": "bench", "q": query, "epoch": "s"})
        result = body["results"][0]
        if "error" in result:
            if "database not found" in result["error"]:
                return []
            raise BenchError(f"InfluxQL {query!r} failed: {result['error']}")
        series: list[Any] = result.get("series", [])
        return series

    def has_point(self, name: str, timestamp_s: int) -> bool:
        """Select the point's field at its time."""
        _, district, gateway, node, quantity = name.split(".")
        series = self._select(
            f"SELECT {quantity} FROM {TENANT} WHERE district = '{district}'"
            f" AND gateway = '{gateway}' AND node = '{node}'"
            f" AND time = {timestamp_s}s"
        )
        return bool(series and series[0]["values"])

    def count_points(self, start_s: int, end_s: int) -> int:
        """Sum count(*) over the three fields."""
        series = self._select(
            f"SELECT count(*) FROM {TENANT}"
            f" WHERE time >= {start_s}s AND time <= {end_s}s"
        )
        if not series:
            return 0
        return int(sum(v or 0 for v in series[0]["values"][0][1:]))

    def compact(self) -> None:
        """Wait for the cold snapshot and the full compaction to settle."""
        wait_stable_size(self.data_dir, quiet_s=12.0, timeout_s=240.0)

    def w3_request(
        self, query: Query, start_s: int, end_s: int
    ) -> tuple[str, dict[str, Any]]:
        """Return the InfluxQL equivalent of each Graphite query."""
        if query is Query.FIND:
            text = f"SHOW SERIES FROM {TENANT} WHERE district = '{SUMMARY_DISTRICT}'"
        elif query is Query.ONE_SERIES:
            _, district, gateway, node, quantity = ONE_SERIES.split(".")
            text = (
                f"SELECT {quantity} FROM {TENANT} WHERE district = '{district}'"
                f" AND gateway = '{gateway}' AND node = '{node}'"
                f" AND time > {end_s - 86_400}s AND time <= {end_s}s"
            )
        else:
            text = (
                f"SELECT mean({SUMMARY_QUANTITY}) FROM {TENANT}"
                f" WHERE district = '{SUMMARY_DISTRICT}'"
                f" AND time > {end_s - 7 * 86_400}s AND time <= {end_s}s"
                " GROUP BY time(1h), gateway, node"
            )
        return "/query", {"db": "bench", "q": text, "epoch": "s"}

    def w3_items(self, query: Query, body: bytes) -> int:
        """Count non-null values, or series keys for SHOW SERIES."""
        decoded = json.loads(body)
        series = decoded["results"][0].get("series", [])
        return sum(
            1 for item in series for row in item["values"] if row[-1] is not None
        )


CARBON_CONFIG = """\
[cache]
STORAGE_DIR = {storage}/
LOCAL_DATA_DIR = {storage}/whisper/
WHITELISTS_DIR = {storage}/lists/
CONF_DIR = {conf}/
LOG_DIR = {log}/
PID_DIR = {root}/
USER =
MAX_CACHE_SIZE = inf
# Debian ships 500 updates/s and 50 creates/min; creating 9,000 series at that
# rate alone takes three hours, so both limits are lifted.
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {plaintext_port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle_port}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query_port}
USE_FLOW_CONTROL = True
LOG_UPDATES = False
LOG_CREATES = False
LOG_LISTENER_CONNECTIONS = False
CACHE_WRITE_STRATEGY = sorted
WHISPER_AUTOFLUSH = False
WHISPER_FALLOCATE_CREATE = True
CARBON_METRIC_INTERVAL = 0
"""

# Whisper preallocates every file for its whole retention; 8 days contains W2's
# week of 1-minute points.
STORAGE_SCHEMAS = """\
[fleet]
pattern = .*
retentions = 60s:8d
"""

GRAPHITE_WEB_SETTINGS = """\
GRAPHITE_ROOT = "/usr/share/graphite-web"
STATIC_ROOT = "/usr/share/graphite-web/static"
CONF_DIR = "{conf}"
STORAGE_DIR = "{storage}"
WHISPER_DIR = "{storage}/whisper/"
INDEX_FILE = "{storage}/index"
LOG_DIR = "{log}"
SECRET_KEY = "citymesh-benchmark-only"
CARBONLINK_HOSTS = ["127.0.0.1:{query_port}:a"]
DEFAULT_XFILES_FACTOR = 0
FUNCTION_PLUGINS = []
DATABASES = {{
    "default": {{
        "NAME": "{storage}/graphite.db",
        "ENGINE": "django.db.backends.sqlite3",
    }}
}}
"""


class Graphite(System, GraphiteApi):
    """carbon-cache writing whisper files, and graphite-web under gunicorn."""

    name = "Graphite"
    query_api = "graphite-web /render and /metrics/find"
    # Two workers, one per core of the reference machine.
    workers = 2

    def __init__(self) -> None:
        super().__init__()
        self._carbon: Process | None = None
        self._web: Process | None = None

    def version(self) -> str:
        """Return the Debian versions of carbon and graphite-web."""
        return (
            f"carbon {package_version('graphite-carbon')}, "
            f"graphite-web {package_version('graphite-web')}"
        )

    def start(self, workdir: Path) -> None:
        """Start carbon-cache, then graphite-web reading its whisper files and cache."""
        root = workdir / "graphite"
        storage = root / "storage"
        conf = root / "conf"
        log = root / "log"
        for path in (storage / "whisper", storage / "lists", conf, log):
            path.mkdir(parents=True)
        self.data_dir = storage / "whisper"
        self.plaintext_port = free_port()
        query_port = free_port()
        (conf / "carbon.conf").write_text(
            CARBON_CONFIG.format(
                storage=storage,
                conf=conf,
                log=log,
                root=root,
                plaintext_port=self.plaintext_port,
                pickle_port=free_port(),
                query_port=query_port,
            )
        )
        (conf / "storage-schemas.conf").write_text(STORAGE_SCHEMAS)
        self._carbon = Process(
            [
                SYSTEM_PYTHON,
                "/usr/bin/carbon-cache",
                f"--config={conf / 'carbon.conf'}",
                f"--pidfile={root / 'carbon.pid'}",
                f"--logdir={log}",
                "--nodaemon",
                "start",
            ],
            workdir / "carbon.log",
        )
        wait_for_port(self.plaintext_port, START_TIMEOUT_S, self._carbon)
        wait_for_port(query_port, START_TIMEOUT_S, self._carbon)

        (root / "bench_graphite_settings.py").write_text(
            GRAPHITE_WEB_SETTINGS.format(
                conf=conf, storage=storage, log=log, query_port=query_port
            )
        )
        env = {
            "PYTHONPATH": str(root),
            "GRAPHITE_SETTINGS_MODULE": "bench_graphite_settings",
            "DJANGO_SETTINGS_MODULE": "graphite.settings",
        }
        subprocess.run(
            [SYSTEM_PYTHON, "-m", "django", "migrate", "--run-syncdb", "-v", "0"],
            env={**env, "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
        )
        self.http_port = free_port()
        self._web = Process(
            [
                SYSTEM_PYTHON,
                "/usr/bin/gunicorn",
                f"--workers={self.workers}",
                f"--bind=127.0.0.1:{self.http_port}",
                "--log-level=warning",
                "graphite.wsgi:application",
            ],
            workdir / "graphite-web.log",
            env=env,
        )
        wait_for_port(self.http_port, START_TIMEOUT_S, self._web)

    def _stop_processes(self) -> None:
        if self._web is not None:
            self._web.stop()
            self._web = None
        if self._carbon is not None:
            # carbon-cache writes its whole cache out before it exits.
            self._carbon.stop(timeout_s=600.0)
            self._carbon = None

    def has_point(self, name: str, timestamp_s: int) -> bool:
        """Render the point's minute."""
        return self.graphite_has_point(name, timestamp_s)

    def count_points(self, start_s: int, end_s: int) -> int:
        """Count with summarize(..., "count") in graphite-web."""
        return self.graphite_count(start_s, end_s)

    def w3_request(
        self, query: Query, start_s: int, end_s: int
    ) -> tuple[str, dict[str, Any]]:
        """Return the Graphite request."""
        return self.graphite_request(query, start_s, end_s)

    def w3_items(self, query: Query, body: bytes) -> int:
        """Count values or nodes."""
        return self.graphite_items(query, body)

    def compact(self) -> None:
        """Wait until carbon has written its cache to whisper."""
        time.sleep(1.0)
