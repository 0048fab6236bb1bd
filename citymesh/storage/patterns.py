"""Graphite glob patterns on dotted names, translated to regular expressions.

Supported per node: `*` (any run of characters except a dot), `?`, character
classes such as `[0-9]` or `[!a]`, and alternatives `{a,b}` whose members may
themselves contain `*` or `?`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from citymesh.errors import QueryError

_META = set("*?[{")


def has_glob(pattern: str) -> bool:
    """Tell whether `pattern` contains any glob metacharacter."""
    return any(c in _META for c in pattern)


def literal_prefix(pattern: str) -> str:
    """Return the part of `pattern` before its first glob metacharacter."""
    for index, char in enumerate(pattern):
        if char in _META:
            return pattern[:index]
    return pattern


def _node_regex(node: str, pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(node):
        c = node[i]
        if c == "*":
            out.append("[^.]*")
        elif c == "?":
            out.append("[^.]")
        elif c == "[":
            end = node.find("]", i + 1)
            if end == -1:
                raise QueryError(f"unclosed '[' in pattern {pattern!r}")
            body = node[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "{":
            end = node.find("}", i + 1)
            if end == -1:
                raise QueryError(f"unclosed '{{' in pattern {pattern!r}")
            options = node[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_node_regex(o, pattern) for o in options) + ")")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@lru_cache(maxsize=1024)
def glob_to_regex(pattern: str) -> str:
    """Translate a dotted glob into an anchored regular expression."""
    if (
        not pattern
        or pattern.startswith(".")
        or pattern.endswith(".")
        or ".." in pattern
    ):
        raise QueryError(f"invalid metric pattern {pattern!r}: empty node")
    nodes = _split_nodes(pattern)
    regex = "^" + r"\.".join(_node_regex(n, pattern) for n in nodes) + "$"
    try:
        re.compile(regex)
    except re.error as exc:
        raise QueryError(
            f"invalid metric pattern {pattern!r}: {exc.msg}; write classes like [0-9]"
        ) from None
    return regex


def _split_nodes(pattern: str) -> list[str]:
    """Split at dots that are not inside `{...}` or `[...]`."""
    nodes: list[str] = []
    depth = 0
    current: list[str] = []
    for c in pattern:
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth = max(0, depth - 1)
        if c == "." and depth == 0:
            nodes.append("".join(current))
            current = []
        else:
            current.append(c)
    nodes.append("".join(current))
    return nodes


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Return a compiled regular expression for a dotted glob."""
    return re.compile(glob_to_regex(pattern))
