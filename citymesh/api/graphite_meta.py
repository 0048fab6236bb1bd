"""Graphite metadata endpoints that Grafana's Graphite datasource calls.

/metrics/expand, /metrics/index.json, the /tags family and /functions, in
graphite-web 1.1's response shapes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from fastapi import APIRouter, Request

from citymesh.api import auth
from citymesh.api.graphite import last_param, request_params
from citymesh.errors import QueryError
from citymesh.query.find import find_metric_nodes
from citymesh.query.functions import FUNCTIONS
from citymesh.query.tags import find_by_tags, tag_names, tag_values, tagged_metas
from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)

router = APIRouter(tags=["graphite"])

# graphite-web's TAGDB_AUTOCOMPLETE_LIMIT default.
AUTOCOMPLETE_LIMIT = 100


def _limit(params: dict[str, list[str]]) -> int:
    text = last_param(params, "limit") or str(AUTOCOMPLETE_LIMIT)
    if not text.isdigit() or int(text) < 1:
        raise QueryError(f"invalid limit={text!r}: use a positive integer")
    return int(text)


def _expand(store: TimeSeriesStore, queries: list[str], leaves_only: bool) -> Any:
    results: set[str] = set()
    for query in queries:
        for node in find_metric_nodes(store, query):
            if node.is_leaf or not leaves_only:
                results.add(node.path)
    return {"results": sorted(results)}


@router.get("/metrics/expand")
@router.post("/metrics/expand")
async def metrics_expand(request: Request) -> Any:
    """Expand glob queries into the matching paths, as graphite-web."""
    context = auth.scoped_context(request)
    params = await request_params(request)
    queries = params.get("query", [])
    if not queries:
        raise QueryError("missing query: pass query=<glob>, e.g. query=demo.*")
    leaves_only = (last_param(params, "leavesOnly", "0") or "0") in ("1", "true")
    return await asyncio.to_thread(_expand, context.store, queries, leaves_only)


@router.get("/metrics/index.json")
async def metrics_index(request: Request) -> list[str]:
    """List every series name, as graphite-web's index."""
    context = auth.scoped_context(request)
    metas = await asyncio.to_thread(context.store.series)
    return sorted(meta.name for meta in metas if ";" not in meta.name)


def _filter(params: dict[str, list[str]]) -> re.Pattern[str] | None:
    text = last_param(params, "filter")
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as err:
        raise QueryError(f"invalid filter={text!r}: {err}") from err


@router.get("/tags")
async def tags_list(request: Request) -> list[dict[str, str]]:
    """List tag names, optionally those matching a `filter` regular expression."""
    context = auth.scoped_context(request)
    params = await request_params(request)
    pattern = _filter(params)
    names = await asyncio.to_thread(tag_names, context.store, "", 10**9)
    return [{"tag": n} for n in names if pattern is None or pattern.match(n)]


@router.get("/tags/autoComplete/tags")
@router.post("/tags/autoComplete/tags")
async def tags_autocomplete_tags(request: Request) -> list[str]:
    """Complete tag names by prefix among the series matching `expr`."""
    context = auth.scoped_context(request)
    params = await request_params(request)
    prefix = last_param(params, "tagPrefix", "") or ""
    expressions = params.get("expr", [])
    limit = _limit(params)

    def complete() -> list[str]:
        if not expressions:
            return tag_names(context.store, prefix, limit)
        used = {expr.split("=", 1)[0].rstrip("!") for expr in expressions}
        found: set[str] = set()
        for meta in find_by_tags(context.store, expressions):
            found.update(meta.tags)
            found.add("name")
        names = sorted(t for t in found - used if t.startswith(prefix))
        return names[:limit]

    return await asyncio.to_thread(complete)


@router.get("/tags/autoComplete/values")
@router.post("/tags/autoComplete/values")
async def tags_autocomplete_values(request: Request) -> list[str]:
    """Complete the values of one tag by prefix among the series matching `expr`."""
    context = auth.scoped_context(request)
    params = await request_params(request)
    tag = last_param(params, "tag")
    if not tag:
        raise QueryError("missing tag: pass tag=<tag name>")
    prefix = last_param(params, "valuePrefix", "") or ""
    expressions = params.get("expr", [])
    return await asyncio.to_thread(
        tag_values, context.store, tag, expressions, prefix, _limit(params)
    )


@router.get("/tags/findSeries")
@router.post("/tags/findSeries")
async def tags_find_series(request: Request) -> list[str]:
    """Return the names of the series matching every `expr`."""
    context = auth.scoped_context(request)
    params = await request_params(request)
    expressions = params.get("expr", [])
    metas = await asyncio.to_thread(find_by_tags, context.store, expressions)
    return [meta.name for meta in metas]


@router.get("/tags/{tag}")
async def tags_detail(tag: str, request: Request) -> dict[str, Any]:
    """Return a tag's values with the number of series holding each."""
    context = auth.scoped_context(request)
    params = await request_params(request)
    pattern = _filter(params)

    def count() -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, tags in tagged_metas(context.store):
            if tag in tags:
                counts[tags[tag]] = counts.get(tags[tag], 0) + 1
        return counts

    counts = await asyncio.to_thread(count)
    values = [
        {"count": counts[value], "value": value}
        for value in sorted(counts)
        if pattern is None or pattern.match(value)
    ]
    return {"tag": tag, "values": values}


@router.get("/functions")
async def functions_list() -> dict[str, Any]:
    """Describe every render function with its parameters, as graphite-web."""
    described: dict[str, Any] = {}
    for name, spec in sorted(FUNCTIONS.items()):
        params = [
            {
                "name": param.name,
                "type": param.type.value,
                "required": param.required,
                **({"default": param.default} if param.default is not None else {}),
                **({"multiple": True} if param.multiple else {}),
                **({"options": list(param.options)} if param.options else {}),
            }
            for param in spec.params
        ]
        signature = ", ".join(param.name for param in spec.params)
        described[name] = {
            "name": name,
            "function": f"{name}({signature})",
            "description": spec.implementation.__doc__ or "",
            "module": "citymesh.query",
            "group": spec.group,
            "params": params,
        }
    return described
