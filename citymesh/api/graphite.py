"""Graphite-compatible endpoints: /render and /metrics/find."""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from citymesh.api import auth
from citymesh.errors import QueryError
from citymesh.query.find import find_completer, find_nodes
from citymesh.query.render import (
    consolidate_for_display,
    evaluate,
    series_info,
    to_csv,
    to_json,
    to_raw,
)
from citymesh.query.timeparse import parse_time

logger = logging.getLogger(__name__)

router = APIRouter(tags=["graphite"])

RENDER_FORMATS = ("json", "csv", "raw", "pickle")


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
    params = await request_params(request)
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
    max_points = _max_data_points(params)
    series = await asyncio.to_thread(
        evaluate, targets, context.store, from_s, until_s, now, tz
    )
    if fmt == "csv":
        return PlainTextResponse(to_csv(series, tz), media_type="text/csv")
    if fmt == "raw":
        return PlainTextResponse(to_raw(series))
    if fmt == "pickle":
        body = pickle.dumps([series_info(s) for s in series], protocol=2)
        return Response(body, media_type="application/pickle")
    if max_points is not None:
        series = consolidate_for_display(series, max_points)
    # orjson encodes the datapoints about ten times faster than the json module.
    body = orjson.dumps(to_json(series, no_null_points="noNullPoints" in params))
    return Response(body, media_type="application/json")


@router.get(
    "/metrics/find",
    summary="Graphite metrics tree: the next level under a glob query",
)
@router.post(
    "/metrics/find",
    summary="Graphite metrics tree: the next level under a glob query",
)
async def metrics_find(request: Request) -> Any:
    """Return the children of a glob query in Graphite's treejson or completer form."""
    context = auth.scoped_context(request)
    params = await request_params(request)
    query = last_param(params, "query")
    if not query:
        raise QueryError(
            "missing query: pass query=<glob>, e.g. query=* or query=demo.*"
        )
    fmt = last_param(params, "format", "treejson") or "treejson"
    if fmt == "completer":
        return await asyncio.to_thread(find_completer, context.store, query)
    if fmt != "treejson":
        raise QueryError(f"invalid format={fmt!r}: use treejson or completer")
    wildcards = (last_param(params, "wildcards", "0") or "0") in ("1", "true")
    return await asyncio.to_thread(
        find_nodes, context.store, query, wildcards=wildcards
    )
