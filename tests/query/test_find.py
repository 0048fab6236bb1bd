"""Tests for /metrics/find results in treejson and completer formats."""

from __future__ import annotations

import pytest

from citymesh.errors import QueryError
from citymesh.query.find import find_completer, find_metric_nodes, find_nodes
from citymesh.storage.duckdb_store import DuckDBStore

from .conftest import WritePoints
from .helpers import T0

NAMES = [
    "demo.city.gw-1.dev1.temperature",
    "demo.city.gw-1.dev1.co2",
    "demo.city.gw-1.dev2.co2",
    "demo.city.gw-2.dev9.temperature",
    "demo.port.gw-1.dev1.temperature",
    "other.site.gw-1.dev1.light",
]


@pytest.fixture
def tree(store: DuckDBStore, write_points: WritePoints) -> DuckDBStore:
    """A store holding the series in NAMES."""
    for name in NAMES:
        write_points(name, {T0: 1.0})
    return store


def _branch(text: str, node_id: str) -> dict[str, object]:
    return {
        "text": text,
        "id": node_id,
        "leaf": 0,
        "expandable": 1,
        "allowChildren": 1,
        "context": {},
    }


def _leaf(text: str, node_id: str) -> dict[str, object]:
    return {
        "text": text,
        "id": node_id,
        "leaf": 1,
        "expandable": 0,
        "allowChildren": 0,
        "context": {},
    }


def test_find_nodes_top_level(tree: DuckDBStore) -> None:
    assert find_nodes(tree, "*") == [_branch("demo", "demo"), _branch("other", "other")]


def test_find_nodes_branches_deduplicated_and_sorted(tree: DuckDBStore) -> None:
    assert find_nodes(tree, "demo.*") == [
        _branch("city", "demo.city"),
        _branch("port", "demo.port"),
    ]
    assert find_nodes(tree, "demo.city.*") == [
        _branch("gw-1", "demo.city.gw-1"),
        _branch("gw-2", "demo.city.gw-2"),
    ]


def test_find_nodes_leaves(tree: DuckDBStore) -> None:
    assert find_nodes(tree, "demo.city.gw-1.dev1.*") == [
        _leaf("co2", "demo.city.gw-1.dev1.co2"),
        _leaf("temperature", "demo.city.gw-1.dev1.temperature"),
    ]


def test_find_nodes_exact_leaf(tree: DuckDBStore) -> None:
    assert find_nodes(tree, "demo.city.gw-1.dev1.co2") == [
        _leaf("co2", "demo.city.gw-1.dev1.co2")
    ]


def test_find_nodes_glob_prefix_merges_names(tree: DuckDBStore) -> None:
    # gw-1 exists under both sites; graphite-web returns it once, id from the query.
    assert find_nodes(tree, "demo.*.gw-1") == [_branch("gw-1", "demo.*.gw-1")]


def test_find_nodes_braces_and_classes(tree: DuckDBStore) -> None:
    assert find_nodes(tree, "demo.city.gw-[0-9].{dev1,dev9}") == [
        _branch("dev1", "demo.city.gw-[0-9].dev1"),
        _branch("dev9", "demo.city.gw-[0-9].dev9"),
    ]


def test_find_nodes_no_match(tree: DuckDBStore) -> None:
    assert find_nodes(tree, "demo.nowhere.*") == []
    assert find_nodes(tree, "demo.city.gw-1.dev1.co2.deeper") == []


def test_find_nodes_wildcard_node(tree: DuckDBStore) -> None:
    result = find_nodes(tree, "demo.city.gw-1.dev1.*", wildcards=True)
    assert result[0] == _leaf("*", "demo.city.gw-1.dev1.*")
    assert len(result) == 3
    branches = find_nodes(tree, "demo.*", wildcards=True)
    assert branches[0] == _branch("*", "demo.*")
    single = find_nodes(tree, "other.*", wildcards=True)
    assert single == [_branch("site", "other.site")]


def test_find_nodes_leaf_and_branch_same_name(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.b", {T0: 1.0})
    write_points("a.b.c", {T0: 1.0})
    write_points("a.d", {T0: 1.0})
    assert find_nodes(store, "a.*") == [_branch("b", "a.b"), _leaf("d", "a.d")]


def test_find_nodes_invalid_query(tree: DuckDBStore) -> None:
    with pytest.raises(QueryError):
        find_nodes(tree, "demo..city")
    with pytest.raises(QueryError):
        find_nodes(tree, "demo.{city")


def test_find_metric_nodes_paths(tree: DuckDBStore) -> None:
    nodes = find_metric_nodes(tree, "demo.*.gw-1")
    assert [(n.path, n.name, n.is_leaf) for n in nodes] == [
        ("demo.city.gw-1", "gw-1", False),
        ("demo.port.gw-1", "gw-1", False),
    ]


def test_find_completer_appends_star(tree: DuckDBStore) -> None:
    assert find_completer(tree, "demo.c") == {
        "metrics": [{"path": "demo.city.", "name": "city", "is_leaf": "0"}]
    }


def test_find_completer_leaves(tree: DuckDBStore) -> None:
    assert find_completer(tree, "demo.city.gw-1.dev1.*") == {
        "metrics": [
            {"path": "demo.city.gw-1.dev1.co2", "name": "co2", "is_leaf": "1"},
            {
                "path": "demo.city.gw-1.dev1.temperature",
                "name": "temperature",
                "is_leaf": "1",
            },
        ]
    }


def test_find_completer_double_dot(tree: DuckDBStore) -> None:
    # As in graphite-web, "demo.." becomes "demo*.*": any first node starting
    # with "demo", then every child.
    result = find_completer(tree, "demo..")
    assert result == {
        "metrics": [
            {"path": "demo.city.", "name": "city", "is_leaf": "0"},
            {"path": "demo.port.", "name": "port", "is_leaf": "0"},
        ]
    }
