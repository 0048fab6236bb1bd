"""Decode carbon's pickle protocol without running code from the network.

A frame is a 4-byte big-endian length, then a pickle of a list of
`(path, (timestamp, value))` tuples, as carbon-relay and carbon's own
clients send it. The unpickler refuses every global, so a frame can only
build lists, tuples, strings and numbers.
"""

from __future__ import annotations

import io
import logging
import pickle
import struct
from typing import Any

import numpy as np

from citymesh.carbon.parse import (
    EMPTY_PATH,
    INVALID_LINE,
    INVALID_TIMESTAMP,
    INVALID_VALUE,
    NON_FINITE_VALUE,
    ParsedPoints,
)

logger = logging.getLogger(__name__)

HEADER = struct.Struct("!L")
# Carbon's receiver (1.1) refuses frames above 1 MiB by default; this allows
# more, because relays batch up to their own limits.
MAX_FRAME_BYTES = 16 * 1024 * 1024


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def decode_frame(payload: bytes, now_s: float) -> ParsedPoints:
    """Decode one pickle frame's payload into points, counting what is invalid."""
    parsed = ParsedPoints.empty()
    try:
        items = _SafeUnpickler(io.BytesIO(payload)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        parsed.reject(INVALID_LINE, f"undecodable pickle frame: {exc}".encode())
        return parsed
    if not isinstance(items, list | tuple):
        parsed.reject(INVALID_LINE, repr(items)[:200].encode())
        return parsed
    paths: list[bytes] = []
    values: list[float] = []
    stamps: list[float] = []
    for item in items:
        try:
            path, (stamp, value) = item
            path_bytes = path.encode() if isinstance(path, str) else bytes(path)
        except (TypeError, ValueError, UnicodeEncodeError):
            parsed.reject(INVALID_LINE, repr(item)[:200].encode())
            continue
        if not path:
            parsed.reject(EMPTY_PATH, repr(item)[:200].encode())
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            parsed.reject(INVALID_VALUE, repr(value)[:200].encode())
            continue
        try:
            seconds = float(stamp)
        except (TypeError, ValueError):
            parsed.reject(INVALID_TIMESTAMP, repr(stamp)[:200].encode())
            continue
        if number != number or number in (float("inf"), float("-inf")):
            parsed.reject(NON_FINITE_VALUE, repr(value).encode())
            continue
        if seconds == -1.0:
            seconds = now_s
        if not 0 < seconds < 2**33:
            parsed.reject(INVALID_TIMESTAMP, repr(stamp)[:200].encode())
            continue
        paths.append(path_bytes)
        values.append(number)
        stamps.append(seconds)
    parsed.paths = paths
    parsed.values = np.array(values, dtype=np.float64)
    parsed.timestamps_ms = np.array(stamps, dtype=np.float64).astype(np.int64) * 1000
    return parsed
