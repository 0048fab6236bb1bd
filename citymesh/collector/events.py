"""In-process fan-out of stored points and gateway changes to live subscribers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Events queued per subscriber; a browser tab that stops reading loses the
# oldest events rather than growing the server's memory.
SUBSCRIBER_QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Event:
    """A named event with a JSON-ready body."""

    name: str
    data: dict[str, Any]


class EventHub:
    """Publishes events to every current subscriber without blocking the publisher."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self.dropped = 0

    def publish(self, event: Event) -> None:
        """Queue `event` for every subscriber, dropping its oldest event when full."""
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        """Yield a queue that receives every event until the context exits."""
        queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def close(self) -> None:
        """Tell every subscriber to finish, for a prompt server shutdown."""
        self.publish(Event("close", {}))

    @property
    def subscribers(self) -> int:
        """Return the number of current subscribers."""
        return len(self._queues)
