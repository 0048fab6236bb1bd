"""The network map a gateway reports for its mesh (channel `topology`).

Sent retained after each discovery and whenever a node's role, parent, hops
or online state changes, so the data centre keeps the latest map.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from citymesh.errors import MessageRejected
from citymesh.protocol.messages import Identifier, TimestampMs

# IQRF addresses nodes 1 to 239; 0 is the coordinator.
MAX_NODES = 240

Address = Annotated[StrictInt, Field(ge=0, le=239)]


class TopologyNode(BaseModel):
    """One node of the mesh as the gateway last saw it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: Address
    role: Literal["coordinator", "router", "sensor"]
    device: Identifier | None = None
    """Device id of the node's series, for nodes with sensors."""
    mid: Annotated[StrictInt, Field(ge=0, le=0xFFFF_FFFF)] | None = None
    hwpid: Annotated[StrictInt, Field(ge=0, le=0xFFFF)] | None = None
    parent: Address | None = None
    hops: Annotated[StrictInt, Field(ge=0, le=255)] | None = None
    link_quality: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)] | None = None
    """Quality of the link to the parent, 0 (none) to 1 (perfect)."""
    last_seen_ms: TimestampMs | None = None
    online: StrictBool = True
    quantities: list[StrictStr] = Field(default_factory=list)


class Topology(BaseModel):
    """The map of one mesh behind a gateway."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1]
    tenant: Identifier
    gateway: Identifier
    sent_ms: TimestampMs
    network: Identifier = "iqrf"
    nodes: Annotated[list[TopologyNode], Field(max_length=MAX_NODES)]


def encode_topology(message: Topology) -> bytes:
    """Serialise a map to compact UTF-8 JSON, leaving out unknown fields."""
    return message.model_dump_json(exclude_none=True).encode()


def decode_topology(payload: bytes, max_bytes: int) -> Topology:
    """Parse and validate a map, or raise MessageRejected with a counted reason."""
    if len(payload) > max_bytes:
        raise MessageRejected(
            "too_large", f"{len(payload)} bytes exceeds the limit of {max_bytes}"
        )
    try:
        raw = json.loads(payload)
    except RecursionError:
        raise MessageRejected("invalid_json", "JSON is nested too deeply") from None
    except ValueError as exc:
        raise MessageRejected("invalid_json", str(exc)[:200]) from None
    if not isinstance(raw, dict):
        raise MessageRejected("invalid_json", "payload is not a JSON object")
    if raw.get("v") != 1 or type(raw.get("v")) is not int:
        raise MessageRejected("unsupported_version", f"v={raw.get('v')!r}")
    try:
        return Topology.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise MessageRejected("invalid_fields", f"{where}: {first['msg']}") from None
