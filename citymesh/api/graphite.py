"""Graphite-compatible endpoints: /render and /metrics/find.

The request parsing and the response bodies live in plain functions, because
two routes serve them: these FastAPI routes (POST, and the OpenAPI docs of
both methods) and the lean ASGI route of citymesh.api.graphite_asgi (GET).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from dataclasses import dataclass

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from citymesh.api import auth
from citymesh.errors import QueryError
from citymesh.query.find import find_completer, find_nodes
from citymesh.query.render import (
    evaluate,
    series_info,
    to_csv,
    to_json,
    to_raw,
)
from citymesh.query.timeparse import parse_time
from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)

router = APIRouter(tags=["graphite"])

RENDER_FORMATS = ("json", "csv", "raw", "pickle")
# The Content-Type of each format: what Starlette's Response and
# PlainTextResponse set for these media types.
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "raw": "text/plain; charset=utf-8",
    "pickle": "application/pickle",
}


async def request_params(request: Request) -> dict[str, list[str]]:
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


def last_param(
    params: dict[str, list[str]], key: str, default: str | None = None
) -> str | None:
    """Return the last value given for `key`, or `default`."""
    values = params.get(key)
    return values[-1] if values else default


def _render_format(params: dict[str, list[str]]) -> str:
    """Pick the output format the way graphite-web does, `format` winning."""
    fmt = "json"
    if "pickle" in params:
        fmt = "pickle"
    if "rawData" in params:
        fmt = "raw"
    fmt = last_param(params, "format", fmt) or fmt
    if fmt not in RENDER_FORMATS:
        raise QueryError(
            f"invalid format={fmt!r}: use one of {', '.join(RENDER_FORMATS)}"
        )
    return fmt


def _max_data_points(params: dict[str, list[str]]) -> int | None:
    text = last_param(params, "maxDataPoints")
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise QueryError(
            f"invalid maxDataPoints={text!r}: use a positive integer"
        ) from None
    if value < 1:
        raise QueryError(f"invalid maxDataPoints={value}: use a positive integer")
    return value


@dataclass(frozen=True, slots=True)
class RenderQuery:
    """A parsed /render request, with times in epoch seconds."""

    targets: list[str]
    fmt: str
    tz: str | None
    now: int
    from_s: int
    until_s: int
    max_points: int | None
    no_null_points: bool


def parse_render(params: dict[str, list[str]]) -> RenderQuery:
    """Parse /render parameters, raising QueryError on invalid ones."""
    targets = [
        t for t in params.get("target", []) + params.get("target[]", []) if t.strip()
    ]
    if not targets:
        raise QueryError(
            "missing target: pass at least one target=<series or function>"
        )
    fmt = _render_format(params)
    tz = last_param(params, "tz")
    now = int(time.time())
    now_text = last_param(params, "now")
    if now_text:
        now = parse_time(now_text, now, tz)
    from_s = parse_time(last_param(params, "from", "-24h") or "-24h", now, tz)
    until_s = parse_time(last_param(params, "until", "now") or "now", now, tz)
    # graphite-web swaps a reversed range and rejects an empty one.
    from_s, until_s = min(from_s, until_s), max(from_s, until_s)
    if from_s == until_s:
        raise QueryError(f"invalid time range: from and until are both {from_s}")
    return RenderQuery(
        targets=targets,
        fmt=fmt,
        tz=tz,
        now=now,
        from_s=from_s,
        until_s=until_s,
        max_points=_max_data_points(params),
        no_null_points="noNullPoints" in params,
    )


def render_body(store: TimeSeriesStore, query: RenderQuery) -> bytes:
    """Evaluate the targets and encode them in the requested format."""
    # graphite-web applies maxDataPoints to JSON only; evaluate consolidates
    # then, reading paths already consolidated where the store can aggregate.
    max_points = query.max_points if query.fmt == "json" else None
    series = evaluate(
        query.targets,
        store,
        query.from_s,
        query.until_s,
        query.now,
        query.tz,
        max_data_points=max_points,
    )
    if query.fmt == "csv":
        return to_csv(series, query.tz).encode()
    if query.fmt == "raw":
        return to_raw(series).encode()
    if query.fmt == "pickle":
        return pickle.dumps([series_info(s) for s in series], protocol=2)
    # orjson encodes the datapoints about ten times faster than the json module.
    return orjson.dumps(to_json(series, no_null_points=query.no_null_points))


@dataclass(frozen=True, slots=True)
class FindQuery:
    """A parsed /metrics/find request."""

    query: str
    completer: bool
    wildcards: bool


def parse_find(params: dict[str, list[str]]) -> FindQuery:
    """Parse /metrics/find parameters, raising QueryError on invalid ones."""
    query = last_param(params, "query")
    if not query:
        raise QueryError(
            "missing query: pass query=<glob>, e.g. query=* or query=demo.*"
        )
    fmt = last_param(params, "format", "treejson") or "treejson"
    if fmt not in ("treejson", "completer"):
        raise QueryError(f"invalid format={fmt!r}: use treejson or completer")
    wildcards = (last_param(params, "wildcards", "0") or "0") in ("1", "true")
    return FindQuery(query, fmt == "completer", wildcards)


def find_body(store: TimeSeriesStore, query: FindQuery) -> bytes:
    """Return the children of a glob query in Graphite's treejson or completer form."""
    if query.completer:
        return orjson.dumps(find_completer(store, query.query))
    return orjson.dumps(find_nodes(store, query.query, wildcards=query.wildcards))


@router.get(
    "/render",
    summary="Graphite render API: targets, from/until, tz, format, maxDataPoints",
)
@router.post(
    "/render",
    summary="Graphite render API: targets, from/until, tz, format, maxDataPoints",
)
async def render(request: Request) -> Response:
    """Evaluate Graphite targets and return json, csv, raw or pickle."""
    context = auth.scoped_context(request)
    query = parse_render(await request_params(request))
    body = await asyncio.to_thread(render_body, context.store, query)
    return Response(body, media_type=CONTENT_TYPES[query.fmt])


@router.get(
    "/metrics/find",
    summary="Graphite metrics tree: the next level under a glob query",
)
@router.post(
    "/metrics/find",
    summary="Graphite metrics tree: the next level under a glob query",
)
async def metrics_find(request: Request) -> Response:
    """Return the children of a glob query in Graphite's treejson or completer form."""
    context = auth.scoped_context(request)
    query = parse_find(await request_params(request))
    body = await asyncio.to_thread(find_body, context.store, query)
    return Response(body, media_type="application/json")
