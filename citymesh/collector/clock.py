"""Gateway clock skew, estimated from the send times gateways stamp on messages.

A message's `sent_ms` (gateway clock) minus the collector's receive time is
the gateway's clock offset minus the transit delay. Delay only ever lowers that
difference, so the highest value over a recent window is the best estimate of
the offset (the minimum-delay filter NTP uses). Retained and redelivered
messages can be arbitrarily late and are not sampled.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

# Offsets beyond this are flagged. MQTT over a mobile link adds seconds of
# delay at worst, and an NTP-synchronised clock is within a second.
SKEW_LIMIT_MS = 60_000
# Samples older than this no longer count, so a corrected clock clears the flag.
WINDOW_MS = 120_000


@dataclass(frozen=True, slots=True)
class ClockSkew:
    """A gateway's estimated clock offset: positive when its clock is ahead."""

    offset_ms: int
    flagged: bool


@dataclass(slots=True)
class SkewEstimator:
    """Recent (received_ms, offset_ms) samples of one gateway."""

    samples: collections.deque[tuple[int, int]] = field(
        default_factory=collections.deque
    )

    def add(self, sent_ms: int, received_ms: int) -> None:
        """Record one message sent at `sent_ms` and received at `received_ms`."""
        self.samples.append((received_ms, sent_ms - received_ms))
        while self.samples and self.samples[0][0] < received_ms - WINDOW_MS:
            self.samples.popleft()

    def estimate(self) -> ClockSkew | None:
        """Return the current estimate, or None before the first sample."""
        if not self.samples:
            return None
        offset = max(offset for _, offset in self.samples)
        return ClockSkew(offset, abs(offset) > SKEW_LIMIT_MS)
