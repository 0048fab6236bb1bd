"""Processes, ports, disk sizes and a keep-alive HTTP client for the benchmarks."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


class BenchError(RuntimeError):
    """A system under test failed to start, to respond or to finish a workload."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float, process: Process) -> None:
    """Wait until 127.0.0.1:port accepts connections, or raise BenchError."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise BenchError(
                f"{process.args[0]} exited with {process.popen.returncode} before "
                f"listening on port {port}:\n{process.tail()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing listened on 127.0.0.1:{port} within {timeout_s:.0f} s")


class Process:
    """A child process with its output in a log file, stopped by its PID."""

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.args = list(args)
        self.log_path = log_path
        merged = dict(os.environ)
        if env:
            merged.update(env)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=merged,
            cwd=cwd,
            start_new_session=True,
        )
        logger.info("started pid %d: %s", self.popen.pid, " ".join(self.args))

    @property
    def pid(self) -> int:
        """Return the process id."""
        return self.popen.pid

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Send SIGTERM to the PID, then SIGKILL if it outlives `timeout_s`."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("pid %d ignored SIGTERM; killing it", self.pid)
                self.popen.kill()
                self.popen.wait()
        self._log.close()

    def tail(self, lines: int = 20) -> str:
        """Return the last lines of the log, for error messages."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def dir_bytes(path: Path) -> int:
    """Return the apparent size in bytes of every file under `path`."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except FileNotFoundError:
                continue
    return total


def wait_stable_size(path: Path, quiet_s: float, timeout_s: float) -> int:
    """Wait until the size of `path` has not changed for `quiet_s`; return it."""
    deadline = time.monotonic() + timeout_s
    size = dir_bytes(path)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now_size = dir_bytes(path)
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return size


class HttpClient:
    """One keep-alive HTTP/1.1 connection, so latency excludes TCP set-up."""

    def __init__(
        self, port: int, timeout_s: float = 120.0, api_key: str | None = None
    ) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """GET `path` with query parameters; raise BenchError unless 200."""
        url = path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        for attempt in (1, 2):
            try:
                self._conn.request("GET", url, headers=self.headers)
                response = self._conn.getresponse()
                body = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                # A server may close an idle keep-alive connection; retry once.
                self._conn.close()
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout_s
                )
                if attempt == 2:
                    raise
        if response.status != 200:
            raise BenchError(
                f"GET {url[:200]} on port {self.port} returned {response.status}: "
                f"{body[:300]!r}"
            )
        return body

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode a JSON body."""
        return json.loads(self.get(path, params))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
