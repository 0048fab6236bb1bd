"""Parse Graphite render targets into a small syntax tree.

A target is one expression:

* a path expression: dotted nodes that may contain the globs `*`, `?`,
  character classes such as `[0-9]` and alternatives such as `{a,b}`;
* a function call `name(arg, ..., key=value, ...)` whose arguments are
  expressions, with keyword arguments after the positional ones;
* a literal: a quoted string ('...' or "..." with backslash escapes), an
  integer, a float, `true`/`false` (any case) or `None`.

Errors raise QueryError with the 0-based character position in the target.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import NoReturn

from citymesh.errors import QueryError

logger = logging.getLogger(__name__)

LiteralValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class PathExpression:
    """A dotted metric name or glob pattern."""

    path: str
    position: int


@dataclass(frozen=True, slots=True)
class Literal:
    """A quoted string, number, boolean or None argument."""

    value: LiteralValue
    position: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call with positional and keyword arguments."""

    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]
    position: int
    raw: str = field(default="", compare=False)
    """The call's text as written in the target, as graphite-web keeps it."""


Node = PathExpression | Literal | Call

# Characters that may appear in a path expression outside `[...]` and `{...}`.
# `=` is left out so that `name=value` always reads as a keyword argument.
_PATH_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.*?:#@~%/^!$&+"
)
_INT_RE = re.compile(r"[-+]?\d+")
_FLOAT_RE = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_target(target: str) -> Node:
    """Parse one render target into its syntax tree."""
    parser = _Parser(target)
    node = parser.expression()
    parser.skip_spaces()
    if not parser.at_end():
        parser.fail(f"unexpected {parser.peek()!r}")
    return node


def first_path_expression(name: str) -> str:
    """Return the first path expression inside a series name such as `f(a.b, 2)`.

    Names that do not parse, or contain no path, are returned unchanged.
    """
    try:
        node = parse_target(name)
    except QueryError:
        return name
    found = _first_path(node)
    return name if found is None else found


def _first_path(node: Node) -> str | None:
    if isinstance(node, PathExpression):
        return node.path
    if isinstance(node, Call):
        for arg in (*node.args, *(value for _, value in node.kwargs)):
            found = _first_path(arg)
            if found is not None:
                return found
    return None


# Deeper nesting has no use in a dashboard and would exhaust Python's
# recursion limit in the parser and the evaluator.
MAX_NESTING = 50


class _Parser:
    """A recursive-descent parser over one target string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.depth = 0

    def at_end(self) -> bool:
        return self.position >= len(self.text)

    def peek(self) -> str:
        return self.text[self.position] if not self.at_end() else ""

    def skip_spaces(self) -> None:
        while not self.at_end() and self.text[self.position].isspace():
            self.position += 1

    def fail(self, problem: str, position: int | None = None) -> NoReturn:
        where = self.position if position is None else position
        raise QueryError(f"invalid target {self.text!r}: {problem} at position {where}")

    def expression(self) -> Node:
        self.skip_spaces()
        start = self.position
        if self.peek() in ("'", '"'):
            return Literal(self.quoted_string(), start)
        word = self.word()
        if not word:
            found = repr(self.peek()) if not self.at_end() else "end of target"
            self.fail(f"expected a path, function call or value but found {found}")
        self.skip_spaces()
        if self.peek() == "(":
            if _IDENTIFIER_RE.fullmatch(word) is None:
                self.fail(f"invalid function name {word!r}", start)
            if self.depth >= MAX_NESTING:
                self.fail(f"functions nested deeper than {MAX_NESTING} levels", start)
            self.depth += 1
            try:
                return self.call(word, start)
            finally:
                self.depth -= 1
        return _classify_word(word, start)

    def call(self, name: str, start: int) -> Call:
        self.position += 1  # the opening parenthesis
        args: list[Node] = []
        kwargs: list[tuple[str, Node]] = []
        self.skip_spaces()
        if self.peek() == ")":
            self.position += 1
            return Call(name, (), (), start, self.text[start : self.position])
        while True:
            self.skip_spaces()
            keyword = self.keyword()
            if keyword is not None:
                if any(existing == keyword for existing, _ in kwargs):
                    self.fail(f"keyword argument {keyword!r} given twice")
                kwargs.append((keyword, self.expression()))
            else:
                if kwargs:
                    self.fail("positional argument after keyword argument")
                args.append(self.expression())
            self.skip_spaces()
            char = self.peek()
            if char == ",":
                self.position += 1
            elif char == ")":
                self.position += 1
                raw = self.text[start : self.position]
                return Call(name, tuple(args), tuple(kwargs), start, raw)
            elif char == "":
                self.fail(f"missing ')' to close {name}(")
            else:
                self.fail(f"expected ',' or ')' but found {char!r}")

    def keyword(self) -> str | None:
        """Consume `name=` if the next argument is a keyword argument."""
        match = _IDENTIFIER_RE.match(self.text, self.position)
        if match is None:
            return None
        after = match.end()
        while after < len(self.text) and self.text[after].isspace():
            after += 1
        if after < len(self.text) and self.text[after] == "=":
            self.position = after + 1
            return match.group(0)
        return None

    def quoted_string(self) -> str:
        quote = self.text[self.position]
        start = self.position
        self.position += 1
        chars: list[str] = []
        while not self.at_end():
            char = self.text[self.position]
            if char == "\\" and self.position + 1 < len(self.text):
                # graphite-web keeps escapes as written, so regular
                # expressions such as 'host(\d)' reach functions intact.
                chars.append(self.text[self.position : self.position + 2])
                self.position += 2
                continue
            if char == quote:
                self.position += 1
                return "".join(chars)
            chars.append(char)
            self.position += 1
        self.fail(f"unterminated string starting with {quote}", start)

    def word(self) -> str:
        """Consume a path, number or keyword, keeping `[...]` and `{...}` whole."""
        start = self.position
        while not self.at_end():
            char = self.text[self.position]
            if char in _PATH_CHARS:
                self.position += 1
            elif char in "[{":
                self.group(char)
            else:
                break
        return self.text[start : self.position]

    def group(self, opening: str) -> None:
        closing = "]" if opening == "[" else "}"
        start = self.position
        end = self.text.find(closing, start + 1)
        if end == -1:
            self.fail(f"missing {closing!r} to close {opening!r}", start)
        body = self.text[start + 1 : end]
        if opening == "{" and any(
            c not in _PATH_CHARS and c not in ",[]" for c in body
        ):
            self.fail(f"invalid character in alternatives {{{body}}}", start)
        self.position = end + 1


def _classify_word(word: str, position: int) -> Node:
    if _INT_RE.fullmatch(word):
        return Literal(int(word), position)
    if _FLOAT_RE.fullmatch(word):
        return Literal(float(word), position)
    lowered = word.lower()
    if lowered in ("true", "false"):
        return Literal(lowered == "true", position)
    if lowered == "none":
        return Literal(None, position)
    return PathExpression(word, position)
