"""Tests for the render target parser."""

from __future__ import annotations

import pytest

from citymesh.errors import QueryError
from citymesh.query.grammar import (
    Call,
    Literal,
    PathExpression,
    first_path_expression,
    parse_target,
)


@pytest.mark.parametrize(
    "path",
    [
        "demo.city.gw-1.dev_1.temperature",
        "demo.*.gw-?.dev[0-9].temp*",
        "demo.{city,port}.gw-1.*.{co2,humidity}",
        "demo.city.gw-[!0].x",
        "a",
    ],
)
def test_parse_target_path_expression(path: str) -> None:
    assert parse_target(path) == PathExpression(path, 0)


def test_parse_target_call_with_positional_args() -> None:
    node = parse_target("summarize(a.b.c, \"1h\", 'max')")
    assert node == Call(
        "summarize",
        (PathExpression("a.b.c", 10), Literal("1h", 17), Literal("max", 23)),
        (),
        0,
    )


def test_parse_target_keyword_args() -> None:
    node = parse_target("summarize(a.b, '1d', func = 'avg', alignToFrom=true)")
    assert isinstance(node, Call)
    assert [name for name, _ in node.kwargs] == ["func", "alignToFrom"]
    assert node.kwargs[0][1] == Literal("avg", 28)
    assert node.kwargs[1][1] == Literal(True, 47)


def test_parse_target_nested_calls() -> None:
    node = parse_target("aliasByNode(movingAverage(sumSeries(a.*.c), 5), 0, -1)")
    assert isinstance(node, Call)
    assert node.name == "aliasByNode"
    inner = node.args[0]
    assert isinstance(inner, Call)
    assert inner.name == "movingAverage"
    innermost = inner.args[0]
    assert isinstance(innermost, Call)
    assert innermost.args == (PathExpression("a.*.c", 36),)
    assert node.args[1:] == (Literal(0, 48), Literal(-1, 51))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("-12", -12),
        ("2.5", 2.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("None", None),
        ("'single'", "single"),
        ('"double"', "double"),
        ("'it\\'s'", "it\\'s"),
        ('"a,b(c)"', "a,b(c)"),
    ],
)
def test_parse_target_literals(text: str, value: object) -> None:
    node = parse_target(f"f({text})")
    assert isinstance(node, Call)
    assert node.args == (Literal(value, 2),)
    assert type(node.args[0].value) is type(value)  # type: ignore[union-attr]


def test_parse_target_dotted_digits_are_a_path() -> None:
    assert parse_target("1.2.3") == PathExpression("1.2.3", 0)


def test_parse_target_empty_call() -> None:
    assert parse_target("f( )") == Call("f", (), (), 0)


def test_parse_target_braces_keep_commas() -> None:
    node = parse_target("sumSeries(a.{b,c}.d, e.f)")
    assert isinstance(node, Call)
    assert node.args == (PathExpression("a.{b,c}.d", 10), PathExpression("e.f", 21))


@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        ("sumSeries(a.b", "missing ')' to close sumSeries(", 13),
        ("sumSeries(a.b))", "unexpected ')'", 14),
        ("f(a,,b)", "expected a path, function call or value but found ','", 4),
        ("f(x=1, a.b)", "positional argument after keyword argument", 7),
        ("f(x=1, x=2)", "keyword argument 'x' given twice", 9),
        ("f('abc)", "unterminated string starting with '", 2),
        ("a.{b,c", "missing '}' to close '{'", 2),
        ("a.[0-9", "missing ']' to close '['", 2),
        ("a.b(c)", "invalid function name 'a.b'", 0),
        ("", "expected a path, function call or value but found end of target", 0),
        ("f(a b)", "expected ',' or ')' but found 'b'", 4),
        ("a.{b,c(}", "invalid character in alternatives {b,c(}", 2),
    ],
)
def test_parse_target_errors_name_position(
    text: str, problem: str, position: int
) -> None:
    with pytest.raises(QueryError) as caught:
        parse_target(text)
    message = str(caught.value)
    assert problem in message
    assert message.endswith(f"at position {position}")
    assert repr(text) in message


def test_first_path_expression_from_function_name() -> None:
    assert first_path_expression('summarize(a.b.c, "1h", "sum")') == "a.b.c"
    assert first_path_expression("scale(movingAverage(x.y,5),2)") == "x.y"
    assert first_path_expression("plain.name") == "plain.name"
    assert first_path_expression("not (parseable") == "not (parseable"
    assert first_path_expression("f(1, 'x')") == "f(1, 'x')"
