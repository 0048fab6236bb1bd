"""Which buffered readings the gateway sends next: live ones, then the backlog.

After a connect, every reading already buffered is backlog and is replayed
oldest first at a bounded rate (a token bucket of readings per second).
Readings accepted while connected are live: a live batch goes out as soon as it
is full or its oldest reading has waited `batch_max_delay_s`, ahead of any
backlog batch, so a long replay never delays fresh data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SendSchedule:
    """Cursors over the buffer's reading ids and the replay rate budget."""

    batch_max_points: int
    batch_max_delay_s: float
    replay_max_readings_per_s: int
    """0 means no limit."""
    backlog_cursor: int = 0
    """Backlog readings with ids up to this one are in a batch already."""
    boundary: int = 0
    """The last reading id that was buffered when the link came up."""
    live_cursor: int = 0
    """Live readings with ids up to this one are in a batch already."""
    first_unbatched_at: float | None = None
    """Monotonic time the oldest live reading not yet in a batch was accepted."""
    _tokens: float = 0.0
    _refilled_at: float = 0.0

    def on_connect(self, last_id: int, now: float) -> None:
        """Start a connection: everything buffered so far becomes backlog."""
        self.boundary = max(self.boundary, last_id)
        self.live_cursor = self.boundary
        self.first_unbatched_at = None
        self._tokens = float(self.batch_max_points)
        self._refilled_at = now

    def on_accept(self, now: float) -> None:
        """Note that new readings were buffered."""
        if self.first_unbatched_at is None:
            self.first_unbatched_at = now

    def live_due(self, last_id: int, now: float, flushing: bool) -> bool:
        """Tell whether a live batch should be formed now."""
        if last_id <= self.live_cursor:
            return False
        if flushing or last_id - self.live_cursor >= self.batch_max_points:
            return True
        since = self.first_unbatched_at
        return since is None or now - since >= self.batch_max_delay_s

    def live_deadline(self, last_id: int) -> float | None:
        """Return when the pending live readings become due, or None."""
        if last_id <= self.live_cursor or self.first_unbatched_at is None:
            return None
        return self.first_unbatched_at + self.batch_max_delay_s

    def took_live(self, last_id_in_batch: int, last_id: int, now: float) -> None:
        """Advance past a formed live batch."""
        self.live_cursor = last_id_in_batch
        if self.live_cursor >= last_id:
            self.first_unbatched_at = None

    @property
    def backlog_pending(self) -> bool:
        """Tell whether backlog readings remain to be formed into batches."""
        return self.backlog_cursor < self.boundary

    def backlog_wait(self, now: float) -> float:
        """Return seconds until the rate budget allows the next backlog batch."""
        rate = self.replay_max_readings_per_s
        if not rate:
            return 0.0
        self._tokens = min(
            float(self.batch_max_points),
            self._tokens + (now - self._refilled_at) * rate,
        )
        self._refilled_at = now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / rate

    def took_backlog(self, last_id_in_batch: int, points: int) -> None:
        """Advance past a formed backlog batch and spend its points."""
        self.backlog_cursor = last_id_in_batch
        self._tokens -= points

    def backlog_done(self) -> None:
        """Note that no backlog reading is left below the boundary."""
        self.backlog_cursor = self.boundary
