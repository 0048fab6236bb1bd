"""The gateway's monotonic batch sequence number, kept across restarts."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

# Numbers reserved per write of the state file. After a crash the gateway
# resumes at the reservation's end, so the collector sees a gap of at most
# this many numbers (reported as possible loss) but never a reused number.
RESERVATION = 1000


class SequenceCounter:
    """Hands out increasing sequence numbers, reserving blocks on disk."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._next = 0
        self._reserved = 0
        if path.exists():
            try:
                self._next = int(json.loads(path.read_text())["reserved"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"sequence state {path} is corrupt ({exc}); delete it to restart "
                    "numbering (the collector will report one gap)"
                ) from exc
        self._reserved = self._next
        logger.info("gateway sequence resumes at %d (state %s)", self._next, path)

    def next(self) -> int:
        """Return the next sequence number."""
        if self._next >= self._reserved:
            self._reserve(self._next + RESERVATION)
        value = self._next
        self._next += 1
        return value

    @property
    def current(self) -> int:
        """Return the next number that will be handed out."""
        return self._next

    def _reserve(self, upto: int) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("w") as f:
            json.dump({"reserved": upto}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        self._reserved = upto

    def close(self) -> None:
        """Record the exact next number so a clean restart leaves no gap."""
        self._reserve(self._next)
