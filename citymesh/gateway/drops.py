"""Accounting of readings the gateway's buffer dropped unsent.

A drop episode begins with the first reading dropped, because the buffer is
full or its readings expired, and ends when the broker acknowledges again. It
is logged once when it begins and once when it ends, with how many readings
went and the span of their measurement times, so a long outage does not
flood the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Drop:
    """Readings deleted unsent, with the span of their measurement times."""

    count: int
    first_ms: int
    last_ms: int

    def merge(self, other: Drop) -> Drop:
        """Return one drop covering both."""
        return Drop(
            self.count + other.count,
            min(self.first_ms, other.first_ms),
            max(self.last_ms, other.last_ms),
        )


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(
        timespec="seconds"
    )


class DropLog:
    """Counts the dropped readings of one buffer and logs its drop episodes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.total = 0
        # Drops since the episode began; None while nothing is being dropped.
        self._episode: Drop | None = None

    def record(self, drop: Drop) -> None:
        """Count a drop, logging the start of an episode."""
        self.total += drop.count
        if self._episode is None:
            logger.warning(
                "gateway buffer %s is full or its readings expired: dropping the "
                "oldest readings until the broker acknowledges again",
                self.path,
            )
            self._episode = drop
        else:
            self._episode = self._episode.merge(drop)

    def end_episode(self) -> Drop | None:
        """Close the current drop episode, logging and returning its totals."""
        episode, self._episode = self._episode, None
        if episode is not None:
            logger.warning(
                "gateway buffer %s dropped %d readings measured from %s to %s "
                "(%d dropped since start)",
                self.path,
                episode.count,
                _iso(episode.first_ms),
                _iso(episode.last_ms),
                self.total,
            )
        return episode
