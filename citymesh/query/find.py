"""Find the next level of the metric tree for Graphite `/metrics/find`.

A query such as `demo.*` matches nodes at its own depth. A node is a leaf
when a series has exactly that name and a branch when longer series names
continue below it. A name that is both (series `a.b` and `a.b.c`) is
returned once, as a branch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from citymesh.storage.base import TimeSeriesStore
from citymesh.storage.patterns import compile_glob, literal_prefix

logger = logging.getLogger(__name__)

_BRANCH = {"leaf": 0, "expandable": 1, "allowChildren": 1}
_LEAF = {"leaf": 1, "expandable": 0, "allowChildren": 0}


@dataclass(frozen=True, slots=True)
class MetricNode:
    """One node of the metric tree that a find query matched."""

    path: str
    """Full dotted path of the node, such as `demo.city.gw-1`."""
    is_leaf: bool

    @property
    def name(self) -> str:
        """The last dotted component of the path."""
        return self.path.rsplit(".", 1)[-1]


def find_metric_nodes(store: TimeSeriesStore, query: str) -> list[MetricNode]:
    """Return the tree nodes matching a glob query, sorted by path."""
    pattern = compile_glob(query)
    depth = _count_nodes(query)
    leaves: set[str] = set()
    branches: set[str] = set()
    # Only names starting with the query's literal prefix can match, so the
    # store returns just those and access checks run on them alone.
    for meta in store.series(prefix=literal_prefix(query)):
        parts = meta.name.split(".")
        if len(parts) < depth:
            continue
        prefix = ".".join(parts[:depth])
        if pattern.match(prefix) is None:
            continue
        if len(parts) == depth:
            leaves.add(prefix)
        else:
            branches.add(prefix)
    nodes = [
        MetricNode(path, is_leaf=path not in branches) for path in leaves | branches
    ]
    nodes.sort(key=lambda node: node.path)
    logger.debug("find %s matched %d nodes", query, len(nodes))
    return nodes


def find_nodes(
    store: TimeSeriesStore, query: str, *, wildcards: bool = False
) -> list[dict[str, Any]]:
    """Return the nodes matching a find query in graphite-web's `treejson` format.

    Node ids are the query's prefix plus the node name, as graphite-web builds
    them, so they contain the query's globs when its prefix has any. Nodes
    with the same name under different parents are returned once. Branches
    come first, then leaves, each sorted by name. With `wildcards` and more
    than one node, a `*` node is added first.
    """
    base = query.rsplit(".", 1)[0] + "." if "." in query else ""
    nodes = find_metric_nodes(store, query)
    by_name: dict[str, bool] = {}
    for node in nodes:
        # A branch under any parent makes the merged node expandable.
        by_name[node.name] = by_name.get(node.name, True) and node.is_leaf
    branches = sorted(name for name, leaf in by_name.items() if not leaf)
    leaves = sorted(name for name, leaf in by_name.items() if leaf)

    results: list[dict[str, Any]] = []
    if wildcards and len(by_name) > 1:
        kind = _LEAF if not branches else _BRANCH
        results.append({"text": "*", "id": base + "*", **kind, "context": {}})
    for name in branches:
        results.append({"text": name, "id": base + name, **_BRANCH, "context": {}})
    for name in leaves:
        results.append({"text": name, "id": base + name, **_LEAF, "context": {}})
    return results


def find_completer(store: TimeSeriesStore, query: str) -> dict[str, Any]:
    """Return completions for a find query in graphite-web's `completer` format.

    As in graphite-web, `..` in the query becomes `*.` and a `*` is appended
    unless the query ends with one, so `demo.ci` completes to `demo.city`.
    Branch paths end with a dot, and `is_leaf` is the string "1" or "0".
    """
    pattern = query.replace("..", "*.")
    if not pattern.endswith("*"):
        pattern += "*"
    metrics = [
        {
            "path": node.path if node.is_leaf else node.path + ".",
            "name": node.name,
            "is_leaf": "1" if node.is_leaf else "0",
        }
        for node in find_metric_nodes(store, pattern)
    ]
    return {"metrics": metrics}


def _count_nodes(query: str) -> int:
    """Count dotted nodes, ignoring dots inside `{...}` and `[...]`."""
    depth = 0
    nodes = 1
    for char in query:
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth = max(0, depth - 1)
        elif char == "." and depth == 0:
            nodes += 1
    return nodes
