"""Server-Sent Events: stored points and gateway changes pushed to browsers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from citymesh.api.auth import read_access
from citymesh.api.context import ApiContext
from citymesh.api.scoped import visible_event

logger = logging.getLogger(__name__)

router = APIRouter(tags=["live"])

# Proxies and browsers drop idle streams; a comment line keeps them open.
KEEPALIVE_S = 15.0


@router.get(
    "/api/v1/stream",
    summary="Live stream of stored points and gateway changes (text/event-stream)",
    response_class=StreamingResponse,
)
async def event_stream(request: Request) -> StreamingResponse:
    """Stream `points` and `gateway` events as Server-Sent Events."""
    context: ApiContext = request.app.state.context
    access = read_access(request)

    async def events() -> AsyncIterator[str]:
        async with context.hub.subscribe() as queue:
            yield ": connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event.name == "close":
                    return
                shown = visible_event(access, event)
                if shown is None:
                    continue
                yield f"event: {shown.name}\ndata: {json.dumps(shown.data)}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
