"""Counters the collector keeps about itself."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CollectorStats:
    """Running totals since the collector started."""

    messages_received: int = 0
    batches_accepted: int = 0
    points_accepted: int = 0
    points_stored: int = 0
    """Points newly added; a redelivered point is accepted but not stored again."""
    writes: int = 0
    write_failures: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    sequence_gaps: int = 0
    """Sequence numbers skipped by gateways: readings possibly lost upstream."""

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as plain JSON-ready values."""
        return {
            "messages_received": self.messages_received,
            "batches_accepted": self.batches_accepted,
            "points_accepted": self.points_accepted,
            "points_stored": self.points_stored,
            "writes": self.writes,
            "write_failures": self.write_failures,
            "rejected": dict(self.rejected),
            "rejected_total": sum(self.rejected.values()),
            "sequence_gaps": self.sequence_gaps,
        }
