"""The interface every system under test offers to the workloads."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from enum import StrEnum
from pathlib import Path
from typing import Any

from bench.fleet import STEP_S, TENANT
from bench.procs import HttpClient

logger = logging.getLogger(__name__)


class Query(StrEnum):
    """The three W3 queries."""

    ONE_SERIES = "one series 24 h raw"
    SUMMARY = "100 series 7 d, 1 h avg"
    FIND = "find with a wildcard"


# The 100 series of the summary query and the find pattern: district d00 has
# 10 gateways of 10 nodes.
SUMMARY_DISTRICT = "d00"
SUMMARY_QUANTITY = "temperature"
ONE_SERIES = f"{TENANT}.d00.g000.n00.temperature"
FIND_PATTERN = f"{TENANT}.d00.*.*"


class System(ABC):
    """A time-series system started for one measurement and stopped by PID."""

    name: str = ""
    query_api: str = ""
    """API through which W3 queries the system, printed next to its figures."""

    def __init__(self) -> None:
        self.plaintext_port = 0
        self.http_port = 0
        self.data_dir = Path()
        self._client: HttpClient | None = None
        self.api_key: str | None = None

    @property
    def client(self) -> HttpClient:
        """Return the keep-alive HTTP client of the query API."""
        if self._client is None:
            self._client = HttpClient(self.http_port, api_key=self.api_key)
        return self._client

    @abstractmethod
    def version(self) -> str:
        """Return the package version."""

    @abstractmethod
    def start(self, workdir: Path) -> None:
        """Start with an empty store under `workdir` and wait until it serves."""

    def stop(self) -> None:
        """Stop every process started by `start`."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._stop_processes()

    @abstractmethod
    def _stop_processes(self) -> None: ...

    @abstractmethod
    def has_point(self, name: str, timestamp_s: int) -> bool:
        """Tell whether the point of `name` at `timestamp_s` is queryable."""

    @abstractmethod
    def count_points(self, start_s: int, end_s: int) -> int:
        """Return the number of queryable fleet points with start <= t <= end."""

    def compact(self) -> None:
        """Ask for the compaction the system offers, and wait for it to settle."""
        logger.debug("%s: no compaction to wait for", self.name)

    @abstractmethod
    def w3_request(
        self, query: Query, start_s: int, end_s: int
    ) -> tuple[str, dict[str, Any]]:
        """Return the path and parameters of a W3 query over [start, end]."""

    @abstractmethod
    def w3_items(self, query: Query, body: bytes) -> int:
        """Return the values (or nodes, for find) in a W3 response, to check it."""


class GraphiteApi:
    """The Graphite render and find API, shared by graphite-web and citymesh."""

    @property
    def client(self) -> HttpClient:
        """Return the HTTP client; System provides it."""
        raise NotImplementedError

    def graphite_has_point(self, name: str, timestamp_s: int) -> bool:
        """Tell whether /render returns a value for `name` at `timestamp_s`."""
        body = self.client.get_json(
            "/render",
            {
                "target": name,
                "from": str(timestamp_s - STEP_S),
                "until": str(timestamp_s + STEP_S),
                "format": "json",
            },
        )
        return any(
            point[1] == timestamp_s and point[0] is not None
            for series in body
            for point in series["datapoints"]
        )

    def graphite_count(self, start_s: int, end_s: int) -> int:
        """Count points with summarize(..., "count") summed over all series."""
        target = f'sumSeries(summarize({TENANT}.*.*.*.*, "1y", "count"))'
        body = self.client.get_json(
            "/render",
            {
                "target": target,
                "from": str(start_s - STEP_S),
                "until": str(end_s + STEP_S),
                "format": "json",
            },
        )
        return int(
            sum(
                point[0]
                for series in body
                for point in series["datapoints"]
                if point[0] is not None
            )
        )

    def graphite_request(
        self, query: Query, start_s: int, end_s: int
    ) -> tuple[str, dict[str, Any]]:
        """Return the /render or /metrics/find request of a W3 query."""
        if query is Query.FIND:
            return "/metrics/find", {"query": FIND_PATTERN}
        if query is Query.ONE_SERIES:
            target = ONE_SERIES
            start = end_s - 86_400
        else:
            target = (
                f"summarize({TENANT}.{SUMMARY_DISTRICT}.*.*.{SUMMARY_QUANTITY},"
                ' "1h", "avg")'
            )
            start = end_s - 7 * 86_400
        return "/render", {
            "target": target,
            "from": str(start),
            "until": str(end_s),
            "format": "json",
        }

    def graphite_items(self, query: Query, body: bytes) -> int:
        """Count non-null values, or nodes for find."""
        decoded = json.loads(body)
        if query is Query.FIND:
            return len(decoded)
        return sum(
            1
            for series in decoded
            for point in series["datapoints"]
            if point[0] is not None
        )
