"""A lean ASGI route for GET /render and GET /metrics/find.

Dashboards poll these two endpoints more than any other. Through FastAPI, a
small read spent about 1 ms outside the query: in six middlewares, matching
the path against every route, dependency resolution, a registry lookup of
the key and two hops to worker threads (measured in-process on a 2-core
x86_64). This route serves GET
requests with the same key check, rate limit, read scope, scoped store,
bodies and error messages as the FastAPI routes in citymesh.api.graphite.
Those still serve POST and describe both methods in the OpenAPI spec.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from citymesh.api.auth import BodySizeLimit, RateLimiter, admit, token_from_headers
from citymesh.api.context import ApiContext
from citymesh.api.graphite import (
    CONTENT_TYPES,
    RenderQuery,
    find_body,
    parse_find,
    parse_render,
    render_body,
)
from citymesh.api.scoped import ScopedStore
from citymesh.errors import ConfigError, QueryError
from citymesh.registry.access import ReadAccess
from citymesh.registry.access import Scope as AccessScope
from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)

JSON = "application/json"

Params = dict[str, list[str]]
Reply = tuple[int, bytes, str, dict[str, str]]
Handler = Callable[[TimeSeriesStore, Params], Awaitable[tuple[bytes, str]]]


# A render runs on the event loop when its targets are at most this many plain
# series paths whose raw points in the range add up to at most
# LOOP_READ_MAX_POINTS, estimated from each series' step. Rollups only lower
# the count. Reading and encoding one day of 1-minute points took about 1.5 ms
# in-process, and skipping the hop to a worker thread and back saved about
# 0.2 ms of it (bench/profile_queries.py, 2-core x86_64). Larger reads run in
# a thread, so they cannot stall other requests and the collector.
LOOP_READ_MAX_TARGETS = 4
LOOP_READ_MAX_POINTS = 2_000
# A series path without globs, alternatives or function calls.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_\-.:#@~%/^!$&+]+")


def runs_on_loop(store: TimeSeriesStore, query: RenderQuery) -> bool:
    """Tell whether a render is small enough to run on the event loop."""
    if len(query.targets) > LOOP_READ_MAX_TARGETS:
        return False
    if not all(_PLAIN_PATH.fullmatch(target) for target in query.targets):
        return False
    span_s = query.until_s - query.from_s
    points = 0
    for meta in store.series(query.targets):
        if meta.step_s <= 0:
            return False
        points += span_s // meta.step_s + 1
    return points <= LOOP_READ_MAX_POINTS


async def _render(store: TimeSeriesStore, params: Params) -> tuple[bytes, str]:
    query = parse_render(params)
    if runs_on_loop(store, query):
        body = render_body(store, query)
    else:
        body = await asyncio.to_thread(render_body, store, query)
    return body, CONTENT_TYPES[query.fmt]


async def _find(store: TimeSeriesStore, params: Params) -> tuple[bytes, str]:
    query = parse_find(params)
    return await asyncio.to_thread(find_body, store, query), JSON


HANDLERS: dict[str, Handler] = {"/render": _render, "/metrics/find": _find}


def _query_params(scope: Scope) -> Params:
    """Parse the query string as Starlette's QueryParams does, keeping repeats."""
    params: Params = {}
    text = scope["query_string"].decode("latin-1")
    for key, value in parse_qsl(text, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    return params


def _header(scope: Scope, name: bytes) -> str | None:
    """Return the first value of a header, decoded as Starlette's Headers do."""
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


class GraphiteReads:
    """ASGI middleware: serve GET /render and /metrics/find, pass the rest on."""

    def __init__(
        self,
        app: ASGIApp,
        context: ApiContext,
        limiter: RateLimiter,
        max_request_bytes: int,
    ) -> None:
        self.app = app
        self._context = context
        self._limiter = limiter
        # The same 413 check as the FastAPI app's, though GET bodies go unread.
        self._serve_limited = BodySizeLimit(self._serve, max_request_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the two Graphite reads here and pass every other request to `app`."""
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] in HANDLERS
        ):
            await self._serve_limited(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = HANDLERS[scope["path"]]
        status, body, content_type, headers = await self._reply(scope, handler)
        raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", content_type.encode()),
        ]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send(
            {"type": "http.response.start", "status": status, "headers": raw_headers}
        )
        await send({"type": "http.response.body", "body": body})

    async def _reply(self, scope: Scope, handler: Handler) -> Reply:
        """Authorise the request, run the handler and turn errors into JSON bodies."""
        identities = self._context.registry.identities
        token = token_from_headers(
            _header(scope, b"authorization"), _header(scope, b"x-api-key")
        )
        client = scope.get("client")
        host = client[0] if client else "unknown"
        try:
            principal = await admit(
                identities, self._limiter, token, host, scope["path"], AccessScope.READ
            )
        except HTTPException as exc:
            body = orjson.dumps({"detail": exc.detail})
            return exc.status_code, body, JSON, dict(exc.headers or {})
        access = ReadAccess(principal, identities.public_data())
        store = ScopedStore(self._context.store, access)
        try:
            body, content_type = await handler(store, _query_params(scope))
        except (QueryError, ConfigError) as exc:
            return 400, orjson.dumps({"error": str(exc)}), JSON, {}
        return 200, body, content_type, {}
