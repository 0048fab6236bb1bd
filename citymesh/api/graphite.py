"""Graphite-compatible endpoints: /render and /metrics/find."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from citymesh.api.context import ApiContext
from citymesh.errors import QueryError
from citymesh.query.find import find_completer, find_nodes
from citymesh.query.render import evaluate, to_csv, to_json
from citymesh.query.timeparse import parse_time

logger = logging.getLogger(__name__)

router = APIRouter(tags=["graphite"])

RENDER_FORMATS = ("json", "csv")


async def _params(request: Request) -> dict[str, list[str]]:
    """Merge query-string and form parameters, keeping repeated keys."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    if request.method == "POST":
        form = await request.form()
        for key, field in form.multi_items():
            if isinstance(field, str):
                params.setdefault(key, []).append(field)
    return params


def _one(
    params: dict[str, list[str]], key: str, default: str | None = None
) -> str | None:
    values = params.get(key)
    return values[-1] if values else default


@router.api_route(
    "/render",
    methods=["GET", "POST"],
    summary="Graphite render API: targets, from/until, format, maxDataPoints",
)
async def render(request: Request) -> Response:
    """Evaluate Graphite targets over a time range and return json or csv."""
    context: ApiContext = request.app.state.context
    params = await _params(request)
    targets = [
        t for t in params.get("target", []) + params.get("target[]", []) if t.strip()
    ]
    if not targets:
        raise QueryError(
            "missing target: pass at least one target=<series or function>"
        )
    fmt = _one(params, "format", "json") or "json"
    if fmt not in RENDER_FORMATS:
        raise QueryError(
            f"invalid format={fmt!r}: use one of {', '.join(RENDER_FORMATS)}"
        )
    tz = _one(params, "tz")
    now = int(time.time())
    from_s = parse_time(_one(params, "from", "-24h") or "-24h", now, tz)
    until_s = parse_time(_one(params, "until", "now") or "now", now, tz)
    if until_s <= from_s:
        raise QueryError(f"until ({until_s}) must be after from ({from_s})")
    max_points_text = _one(params, "maxDataPoints")
    max_points: int | None = None
    if max_points_text:
        try:
            max_points = int(float(max_points_text))
        except ValueError:
            raise QueryError(
                f"invalid maxDataPoints={max_points_text!r}: use a positive integer"
            ) from None
        if max_points < 1:
            raise QueryError(
                f"invalid maxDataPoints={max_points}: use a positive integer"
            )
    series = await asyncio.to_thread(
        evaluate, targets, context.store, from_s, until_s, max_points
    )
    if fmt == "csv":
        return PlainTextResponse(to_csv(series, tz), media_type="text/csv")
    return JSONResponse(to_json(series))


@router.api_route(
    "/metrics/find",
    methods=["GET", "POST"],
    summary="Graphite metrics tree: the next level under a glob query",
)
async def metrics_find(request: Request) -> Any:
    """Return the children of a glob query in Graphite's treejson or completer form."""
    context: ApiContext = request.app.state.context
    params = await _params(request)
    query = _one(params, "query")
    if not query:
        raise QueryError(
            "missing query: pass query=<glob>, e.g. query=* or query=demo.*"
        )
    fmt = _one(params, "format", "treejson") or "treejson"
    if fmt == "completer":
        return await asyncio.to_thread(find_completer, context.store, query)
    if fmt != "treejson":
        raise QueryError(f"invalid format={fmt!r}: use treejson or completer")
    wildcards = (_one(params, "wildcards", "0") or "0") in ("1", "true")
    return await asyncio.to_thread(
        find_nodes, context.store, query, wildcards=wildcards
    )
