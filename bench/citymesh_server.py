"""citymesh under test: `citymesh server` as a subprocess on the local Mosquitto."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.fleet import TENANT
from bench.procs import Process, free_port, wait_for_port
from bench.systems import GraphiteApi, Query, System

logger = logging.getLogger(__name__)

MOSQUITTO_HOST = "127.0.0.1"
MOSQUITTO_PORT = 1883
START_TIMEOUT_S = 60.0


SUBPROCESS_ENV: dict[str, str] = {"PYTHONUNBUFFERED": "1"}
# A citymesh source tree to benchmark in place of the installed package, e.g.
# a `git archive` of a commit; None runs the installed one.
SOURCE_DIR: Path | None = None


def citymesh_command(*args: str) -> list[str]:
    """Return the command line of `citymesh ARGS` from SOURCE_DIR or the install."""
    if SOURCE_DIR is None:
        return [sys.executable, "-m", "citymesh.cli", *args]
    # -S skips site-packages' .pth files, whose editable-install finder would
    # otherwise win over sys.path; the dependencies stay importable.
    paths = [str(SOURCE_DIR), *site.getsitepackages()]
    code = (
        f"import sys; sys.path[:0] = {paths!r}; sys.argv[0] = 'citymesh'; "
        "from citymesh.cli import app; app()"
    )
    return [sys.executable, "-S", "-c", code, *args]


def _run_python(code: str) -> str:
    """Run `code` in the benchmarked citymesh's environment; return its output."""
    command = [sys.executable, "-c", code]
    if SOURCE_DIR is not None:
        paths = [str(SOURCE_DIR), *site.getsitepackages()]
        prelude = f"import sys; sys.path[:0] = {paths!r}; "
        command = [sys.executable, "-S", "-c", prelude + code]
    result = subprocess.run(
        command,
        env={**os.environ, **SUBPROCESS_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def settings_sections() -> set[str]:
    """Return the sections the server settings of the benchmarked citymesh accept."""
    code = (
        "from citymesh.server.settings import ServerSettings as S;"
        "print(' '.join(S.model_fields))"
    )
    return set(_run_python(code).split())


def carbon_fields() -> set[str]:
    """Return the keys the `[carbon]` section of the benchmarked citymesh accepts."""
    code = (
        "from citymesh.server.settings import ServerSettings as S;"
        "print(' '.join(S.model_fields['carbon'].annotation.model_fields))"
    )
    return set(_run_python(code).split())


def prepare_registry(registry_url: str, tenant: str, gateways: int) -> str:
    """Create an operator key, and the tenant with enrolled gateways where needed.

    Returns the key. Gateways are enrolled only if the registry has enrolment,
    because a collector that has it rejects readings of unknown gateways.
    """
    code = f"""
from citymesh.registry.store import Registry
r = Registry({registry_url!r})
ids = r.identities
key = ids.api_keys.issue_key(None, ['read', 'admin'], name='benchmark')
if hasattr(ids, 'enrol'):
    ids.create_tenant({tenant!r})
    for number in range({gateways}):
        ids.enrol({tenant!r}, f'g{{number:03d}}')
print(key.token)
r.close()
"""
    return _run_python(code).strip().splitlines()[-1]


def carbon_available() -> bool:
    """Tell whether the benchmarked citymesh has the `[carbon]` listener."""
    return "carbon" in settings_sections()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_config(sections: dict[str, dict[str, Any]], top: dict[str, Any]) -> str:
    """Render a server.toml from top-level keys and sections."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    for section, items in sections.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in items.items())
    return "\n".join(lines) + "\n"


def clear_mqtt_session(client_id: str) -> None:
    """Connect once with a clean session, so Mosquitto forgets `client_id`."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
    )
    client.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


class CitymeshServer(System, GraphiteApi):
    """A whole data centre: collector on Mosquitto, DuckDB store, HTTP API, carbon."""

    name = "citymesh"
    query_api = "/render and /metrics/find"

    def __init__(self, mqtt_tenant: str, gateways: int = 0) -> None:
        super().__init__()
        self.mqtt_tenant = mqtt_tenant
        self.gateways = gateways
        """Gateways g000... of mqtt_tenant to enrol before start."""
        self.client_id = f"citymesh-bench-{os.getpid()}-{mqtt_tenant}"
        self._process: Process | None = None

    def version(self) -> str:
        """Return the installed citymesh version."""
        return importlib.metadata.version("citymesh")

    @property
    def pid(self) -> int:
        """Return the server's process id, for psutil and py-spy."""
        assert self._process is not None
        return self._process.pid

    def start(self, workdir: Path) -> None:
        """Write server.toml and start `citymesh server` with it."""
        self.data_dir = workdir / "citymesh-data"
        self.http_port = free_port()
        sections: dict[str, dict[str, Any]] = {
            "broker": {
                "mode": "external",
                "url": f"mqtt://{MOSQUITTO_HOST}:{MOSQUITTO_PORT}",
            },
            "http": {"host": "127.0.0.1", "port": self.http_port},
            "collector": {"client_id": self.client_id, "tenant": self.mqtt_tenant},
        }
        fields = settings_sections()
        if "carbon" in fields:
            self.plaintext_port = free_port()
            sections["carbon"] = {
                "enabled": True,
                "host": "127.0.0.1",
                "port": self.plaintext_port,
                "pickle_port": free_port(),
                "udp": False,
                "tenant": TENANT,
            }
            if "prefix_tenant" in carbon_fields():
                # The fleet's paths already start with the tenant node.
                sections["carbon"]["prefix_tenant"] = False
        if "security" in fields:
            # The benchmark measures latency, not the API's request rate limit.
            sections["security"] = {
                "rate_limit_per_s": 1_000_000.0,
                "rate_limit_burst": 1_000_000,
            }
        if "security" in fields:
            # Reads of the whole store and the collector's counters need the
            # platform operator's key once the API checks keys.
            self.data_dir.mkdir(parents=True, exist_ok=True)
            registry = (self.data_dir / "registry.sqlite").resolve()
            self.api_key = prepare_registry(
                f"sqlite:///{registry}", self.mqtt_tenant, self.gateways
            )
        config = workdir / "server.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            server_config(
                sections, {"data_dir": str(self.data_dir), "log_level": "WARNING"}
            )
        )
        self._process = Process(
            citymesh_command("server", "--config", str(config)),
            workdir / "citymesh-server.log",
            env=SUBPROCESS_ENV,
        )
        wait_for_port(self.http_port, START_TIMEOUT_S, self._process)
        if self.plaintext_port:
            wait_for_port(self.plaintext_port, START_TIMEOUT_S, self._process)

    def _stop_processes(self) -> None:
        if self._process is not None:
            # SIGTERM stops cleanly: pending writes, then a DuckDB checkpoint.
            self._process.stop(timeout_s=120.0)
            self._process = None
            clear_mqtt_session(self.client_id)

    def collector_stats(self) -> dict[str, Any]:
        """Return /api/v1/collector/stats."""
        stats: dict[str, Any] = self.client.get_json("/api/v1/collector/stats")
        return stats

    def has_point(self, name: str, timestamp_s: int) -> bool:
        """Render the point's minute."""
        return self.graphite_has_point(name, timestamp_s)

    def count_points(self, start_s: int, end_s: int) -> int:
        """Count with summarize(..., "count") through /render."""
        return self.graphite_count(start_s, end_s)

    def w3_request(
        self, query: Query, start_s: int, end_s: int
    ) -> tuple[str, dict[str, Any]]:
        """Return the Graphite request."""
        return self.graphite_request(query, start_s, end_s)

    def w3_items(self, query: Query, body: bytes) -> int:
        """Count values or nodes."""
        return self.graphite_items(query, body)
