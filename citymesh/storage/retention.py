"""Retention rules in the spirit of Graphite's storage-schemas and storage-aggregation.

A schema maps series names (a regular expression, first match wins) to
archives, finest first, such as `1m:30d,10m:1y,1h:10y`. The first archive
keeps the raw points for its retention and sets the step at which they are
read. Every further archive is a rollup: one value per bucket of its step,
aggregated from the archive before it as whisper propagates, and kept for its
own retention. An aggregation rule maps names to the method (average, sum,
min, max, last) and the xFilesFactor: the fraction of the finer archive's
buckets in a coarse bucket that must hold a value for the rollup to have one.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from citymesh.errors import ConfigError

logger = logging.getLogger(__name__)

AGGREGATION_METHODS = ("average", "sum", "min", "max", "last")

_UNITS_S = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
    "weeks": 7 * 86400,
    "y": 365 * 86400,
    "year": 365 * 86400,
    "years": 365 * 86400,
}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$")


@dataclass(frozen=True, slots=True)
class Archive:
    """One resolution of a schema: its step and how long it is kept, in seconds."""

    step_s: int
    retention_s: int


@dataclass(frozen=True, slots=True)
class Schema:
    """Archives, finest first, of the series whose names match `pattern`."""

    name: str
    pattern: str
    archives: tuple[Archive, ...]


@dataclass(frozen=True, slots=True)
class Aggregation:
    """How the series whose names match `pattern` are rolled up."""

    name: str
    pattern: str
    method: str = "average"
    x_files_factor: float = 0.5


@dataclass(frozen=True, slots=True)
class SeriesPolicy:
    """The archives and aggregation that apply to one series."""

    archives: tuple[Archive, ...]
    method: str
    x_files_factor: float

    @property
    def raw_retention_s(self) -> int | None:
        """Seconds raw points are kept, or None to keep them for ever."""
        return self.archives[0].retention_s if self.archives else None


# Series that no schema matches keep their raw points for ever, as every
# series did before retention rules existed.
KEEP_ALL = SeriesPolicy(archives=(), method="average", x_files_factor=0.5)


def parse_duration(text: str, what: str, step_s: int | None = None) -> int:
    """Parse `30d`, `10m` or `3600` into seconds.

    A bare number is seconds, except for a retention (when `step_s` is given),
    where Graphite reads it as a count of points.
    """
    match = _DURATION.match(text.lower())
    if match is None or match.group(2) not in ("", *_UNITS_S):
        raise ConfigError(
            f"invalid {what} {text!r}: use a number with a unit s, m, h, d, w or y"
        )
    number = int(match.group(1))
    unit = match.group(2)
    if not unit:
        seconds = number * step_s if step_s is not None else number
    else:
        seconds = number * _UNITS_S[unit]
    if seconds <= 0:
        raise ConfigError(f"invalid {what} {text!r}: must be positive")
    return seconds


def parse_archives(text: str) -> tuple[Archive, ...]:
    """Parse Graphite's `retentions` text, such as `1m:30d,10m:1y,1h:10y`.

    Each step must divide the next one and each archive must be kept longer
    than the one before, as whisper requires.
    """
    archives: list[Archive] = []
    for item in text.split(","):
        parts = item.split(":")
        if len(parts) != 2:
            raise ConfigError(
                f"invalid retention {item.strip()!r} in {text!r}: "
                "use <step>:<retention>, e.g. 1m:30d"
            )
        step = parse_duration(parts[0], "step")
        retention = parse_duration(parts[1], "retention", step_s=step)
        archives.append(Archive(step, retention))
    for finer, coarser in itertools.pairwise(archives):
        if coarser.step_s <= finer.step_s or coarser.step_s % finer.step_s:
            raise ConfigError(
                f"invalid retentions {text!r}: step {coarser.step_s}s must be a "
                f"multiple of the finer step {finer.step_s}s"
            )
        if coarser.retention_s <= finer.retention_s:
            raise ConfigError(
                f"invalid retentions {text!r}: the {coarser.step_s}s archive must be "
                f"kept longer than the {finer.step_s}s archive"
            )
    return tuple(archives)


def check_pattern(pattern: str, what: str) -> str:
    """Return a regular expression after checking that it compiles."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid {what} pattern {pattern!r}: {exc}") from None
    return pattern


def check_method(method: str, x_files_factor: float) -> None:
    """Raise ConfigError for an unknown method or an xFilesFactor outside [0, 1]."""
    if method not in AGGREGATION_METHODS:
        raise ConfigError(
            f"invalid aggregation method {method!r}: use one of "
            f"{', '.join(AGGREGATION_METHODS)}"
        )
    if not 0.0 <= x_files_factor <= 1.0:
        raise ConfigError(
            f"invalid xFilesFactor {x_files_factor}: must lie between 0 and 1"
        )


@dataclass(frozen=True)
class RetentionRules:
    """Schemas and aggregations, each list matched in order, first match wins."""

    schemas: tuple[Schema, ...] = ()
    aggregations: tuple[Aggregation, ...] = ()

    @classmethod
    def build(
        cls, schemas: Sequence[Schema], aggregations: Sequence[Aggregation]
    ) -> RetentionRules:
        """Check every rule and return them as one value."""
        for schema in schemas:
            check_pattern(schema.pattern, f"schema {schema.name}")
        for aggregation in aggregations:
            check_pattern(aggregation.pattern, f"aggregation {aggregation.name}")
            check_method(aggregation.method, aggregation.x_files_factor)
        return cls(tuple(schemas), tuple(aggregations))

    def policy(self, name: str) -> SeriesPolicy:
        """Return the archives and aggregation of the series called `name`."""
        return _policy(self, name)

    @property
    def steps(self) -> frozenset[int]:
        """Every rollup step some schema uses."""
        return frozenset(
            archive.step_s for schema in self.schemas for archive in schema.archives[1:]
        )


@lru_cache(maxsize=200_000)
def _policy(rules: RetentionRules, name: str) -> SeriesPolicy:
    archives: tuple[Archive, ...] = ()
    for schema in rules.schemas:
        if re.search(schema.pattern, name):
            archives = schema.archives
            break
    else:
        return KEEP_ALL
    method, factor = "average", 0.5
    for aggregation in rules.aggregations:
        if re.search(aggregation.pattern, name):
            method, factor = aggregation.method, aggregation.x_files_factor
            break
    return SeriesPolicy(archives, method, factor)
