"""Checks readings as the gateway accepts them and encodes readings batches."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from citymesh.gateway.sources import RecordedReading
from citymesh.protocol.messages import (
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    PROTOCOL_VERSION,
)
from citymesh.protocol.names import is_identifier
from citymesh.protocol.quantities import QUANTITIES

logger = logging.getLogger(__name__)


def reading_problem(reading: RecordedReading) -> str | None:
    """Return why the collector would reject `reading`, or None if it is valid."""
    if not is_identifier(reading.device):
        return f"invalid device id {reading.device!r}"
    if reading.quantity not in QUANTITIES:
        return f"unknown quantity {reading.quantity!r}"
    if type(reading.value) not in (int, float) or not math.isfinite(reading.value):
        return f"value {reading.value!r} is not a finite number"
    if not MIN_TIMESTAMP_MS <= reading.timestamp_ms <= MAX_TIMESTAMP_MS:
        return f"timestamp {reading.timestamp_ms} lies outside 2000-2100"
    return None


@dataclass(frozen=True, slots=True)
class BatchEncoder:
    """Encodes readings batches of one gateway as protocol version 1 JSON."""

    tenant: str
    site: str
    gateway: str

    def __call__(
        self, seq: int, sent_ms: int, readings: Sequence[RecordedReading]
    ) -> bytes:
        """Return the payload of batch `seq`; readings were checked on acceptance."""
        grouped: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for r in readings:
            grouped.setdefault((r.device, r.quantity), []).append(
                (r.timestamp_ms, r.value)
            )
        # Plain json is several times faster than building the pydantic model,
        # which matters when a long backlog is replayed; the layout is the one
        # ReadingsBatch validates (tests decode these payloads with it).
        body = {
            "v": PROTOCOL_VERSION,
            "tenant": self.tenant,
            "gateway": self.gateway,
            "site": self.site,
            "seq": seq,
            "sent_ms": sent_ms,
            "series": [
                {"device": device, "quantity": quantity, "points": points}
                for (device, quantity), points in grouped.items()
            ],
        }
        return json.dumps(body, separators=(",", ":")).encode()
