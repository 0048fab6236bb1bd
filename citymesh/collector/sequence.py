"""Per-gateway sequence tracking: duplicates are recognised, gaps are counted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Missing sequence numbers remembered per gateway; older ones are forgotten
# (and a late batch for them is then accepted, relying on idempotent storage).
MAX_REMEMBERED_GAPS = 10_000


@dataclass(slots=True)
class SequenceTracker:
    """The highest sequence number seen from one gateway and the holes below it."""

    highest: int = -1
    gaps: set[int] = field(default_factory=set)

    def is_duplicate(self, seq: int) -> bool:
        """Tell whether `seq` was already accepted."""
        if seq > self.highest:
            return False
        if seq in self.gaps:
            return False
        lowest_remembered = self.highest - MAX_REMEMBERED_GAPS
        return seq > lowest_remembered

    def accept(self, seq: int) -> int:
        """Record `seq` as accepted and return how many numbers it skipped."""
        if seq <= self.highest:
            self.gaps.discard(seq)
            return 0
        skipped = seq - self.highest - 1 if self.highest >= 0 else 0
        if skipped:
            start = max(self.highest + 1, seq - MAX_REMEMBERED_GAPS)
            self.gaps.update(range(start, seq))
        self.highest = seq
        if len(self.gaps) > MAX_REMEMBERED_GAPS:
            floor = self.highest - MAX_REMEMBERED_GAPS
            self.gaps = {g for g in self.gaps if g > floor}
        return skipped

    def dumps(self) -> str:
        """Serialise for the store's state table."""
        return json.dumps({"highest": self.highest, "gaps": sorted(self.gaps)})

    @classmethod
    def loads(cls, text: str) -> SequenceTracker:
        """Restore from `dumps` output."""
        data = json.loads(text)
        return cls(highest=int(data["highest"]), gaps={int(g) for g in data["gaps"]})
