"""Payloads of protocol version 1, validated on construction.

All payloads are UTF-8 JSON objects carrying `"v": 1`. Timestamps are integer
milliseconds since the Unix epoch (UTC). See docs/protocol.md for examples.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    field_validator,
)

from citymesh.errors import MessageRejected
from citymesh.protocol.names import ID_PATTERN
from citymesh.protocol.quantities import QUANTITIES

PROTOCOL_VERSION: Final = 1

# 2000-01-01 and 2100-01-01 in ms: readings outside are clock faults, not data.
MIN_TIMESTAMP_MS = 946_684_800_000
MAX_TIMESTAMP_MS = 4_102_444_800_000

# Integers beyond 2**53 lose precision as float64, the store's value type.
MAX_INT_VALUE = 2**53
# Sequence numbers stay within what JSON numbers carry exactly.
MAX_SEQUENCE = 2**53 - 1

Identifier = Annotated[StrictStr, StringConstraints(pattern=f"^{ID_PATTERN}$")]
TimestampMs = Annotated[StrictInt, Field(ge=MIN_TIMESTAMP_MS, le=MAX_TIMESTAMP_MS)]
Value = StrictFloat | StrictInt


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeriesPoints(_Message):
    """Points of one sensor of one device: `[timestamp_ms, value]` pairs."""

    device: Identifier
    quantity: StrictStr
    # The tuple itself is lax so that JSON arrays are accepted; its members
    # are strict, so "450" or true is still rejected as a value.
    points: Annotated[
        list[tuple[TimestampMs, Value]], Field(min_length=1, strict=False)
    ]

    @field_validator("quantity")
    @classmethod
    def _known_quantity(cls, value: str) -> str:
        if value not in QUANTITIES:
            raise ValueError(f"unknown quantity {value!r}")
        return value

    @field_validator("points")
    @classmethod
    def _finite_values(
        cls, points: list[tuple[int, float | int]]
    ) -> list[tuple[int, float | int]]:
        for timestamp, value in points:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"non-finite value {value!r} at {timestamp}")
            if isinstance(value, int) and abs(value) > MAX_INT_VALUE:
                raise ValueError(
                    f"integer value at {timestamp} is out of range: store values "
                    f"must lie within +-{MAX_INT_VALUE}"
                )
        return points


class _GatewayMessage(_Message):
    v: Literal[1]
    tenant: Identifier
    gateway: Identifier


class ReadingsBatch(_GatewayMessage):
    """A batch of readings with the gateway's monotonic sequence number."""

    site: Identifier
    seq: Annotated[StrictInt, Field(ge=0, le=MAX_SEQUENCE)]
    sent_ms: TimestampMs
    series: Annotated[list[SeriesPoints], Field(min_length=1)]

    def point_count(self) -> int:
        """Return the number of points in the batch."""
        return sum(len(s.points) for s in self.series)


class SensorInfo(_Message):
    """A sensor a device carries: its quantity and nominal sampling step."""

    quantity: StrictStr
    step_s: Annotated[StrictInt, Field(ge=1, le=86_400)] = 60

    @field_validator("quantity")
    @classmethod
    def _known_quantity(cls, value: str) -> str:
        if value not in QUANTITIES:
            raise ValueError(f"unknown quantity {value!r}")
        return value


class DeviceInfo(_Message):
    """A mesh node or other device behind a gateway."""

    device: Identifier
    name: StrictStr = ""
    latitude: StrictFloat | None = None
    longitude: StrictFloat | None = None
    sensors: list[SensorInfo] = Field(default_factory=list)


class Birth(_GatewayMessage):
    """Sent (retained) when a gateway connects: who it is and what it carries."""

    site: Identifier
    boot_ms: TimestampMs
    software: StrictStr = ""
    devices: list[DeviceInfo] = Field(default_factory=list)


class Status(_GatewayMessage):
    """Periodic health report of a gateway."""

    sent_ms: TimestampMs
    online: StrictBool = True
    uptime_s: Annotated[StrictFloat | StrictInt, Field(ge=0)] = 0
    seq: Annotated[StrictInt, Field(ge=0, le=MAX_SEQUENCE)] = 0
    readings_sent: Annotated[StrictInt, Field(ge=0)] = 0
    backlog: Annotated[StrictInt, Field(ge=0)] = 0
    """Readings buffered and not yet acknowledged by the broker."""
    backlog_oldest_age_s: Annotated[StrictFloat | StrictInt, Field(ge=0)] = 0
    """Seconds since the oldest buffered reading was accepted."""
    readings_dropped: Annotated[StrictInt, Field(ge=0)] = 0
    """Readings dropped unsent because the buffer was full or they expired."""
    reconnects: Annotated[StrictInt, Field(ge=0)] = 0
    last_ack_ms: TimestampMs | None = None
    """Gateway clock time of the broker's last acknowledgement of readings."""


class Death(_GatewayMessage):
    """Last will: published by the broker when the gateway vanishes."""

    online: Literal[False] = False


class Command(_Message):
    """A command from the data centre to a gateway."""

    v: Literal[1]
    id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
    command: Identifier
    args: dict[str, Any] = Field(default_factory=dict)


class CommandResponse(_Message):
    """A gateway's response to a command, matched by `id`."""

    v: Literal[1]
    id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
    ok: StrictBool
    result: dict[str, Any] = Field(default_factory=dict)
    error: StrictStr = ""


M = TypeVar("M", bound=_Message)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def decode(payload: bytes, model: type[M], max_bytes: int) -> M:
    """Parse and validate `payload` as `model`, or raise MessageRejected.

    The reason codes are stable because the collector counts by them:
    too_large, invalid_json, unsupported_version, non_finite_value,
    unknown_quantity, invalid_fields.
    """
    if len(payload) > max_bytes:
        raise MessageRejected(
            "too_large", f"{len(payload)} bytes exceeds the limit of {max_bytes}"
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageRejected(
            "invalid_json", f"payload is not UTF-8 (byte {exc.start})"
        ) from None
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise MessageRejected("invalid_json", "JSON is nested too deeply") from None
    except ValueError as exc:
        reason = "non_finite_value" if "JSON allows" in str(exc) else "invalid_json"
        raise MessageRejected(reason, str(exc)[:200]) from None
    if not isinstance(raw, dict):
        raise MessageRejected("invalid_json", "payload is not a JSON object")
    version = raw.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise MessageRejected(
            "unsupported_version",
            f"v={version!r}: this collector accepts only the JSON integer "
            f"{PROTOCOL_VERSION}",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise MessageRejected(_reason_of(exc), _summarise(exc)) from None


def _reason_of(exc: ValidationError) -> str:
    for error in exc.errors():
        message = str(error.get("msg", ""))
        if "unknown quantity" in message:
            return "unknown_quantity"
        if "non-finite" in message:
            return "non_finite_value"
    return "invalid_fields"


def _summarise(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def encode(message: _Message) -> bytes:
    """Serialise a message to compact UTF-8 JSON."""
    return message.model_dump_json(exclude_none=True).encode()
