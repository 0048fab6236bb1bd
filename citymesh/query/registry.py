"""Render function metadata and argument binding.

Each render function is described by a FunctionSpec: its Graphite name, a
group for documentation, and typed parameters. Binding a parsed call against
the spec checks every argument before any series is fetched, so a bad target
fails with a QueryError naming the function and the argument.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from citymesh.errors import QueryError
from citymesh.query.aggregation import AGGREGATION_ALIASES
from citymesh.query.grammar import Call, Literal, LiteralValue, Node, PathExpression
from citymesh.query.series import TimeSeries
from citymesh.query.timeparse import parse_interval
from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)


class ParamType(enum.Enum):
    """Kinds of render function parameters, named as in graphite-web."""

    SERIES_LIST = "seriesList"
    INTEGER = "integer"
    FLOAT = "float"
    STRING = "string"
    BOOLEAN = "boolean"
    INTERVAL = "interval"
    INT_OR_INTERVAL = "intOrInterval"
    NODE_OR_TAG = "nodeOrTag"
    AGG_FUNC = "aggFunc"
    INT_OR_INF = "intOrInf"
    SERIES_OR_NUMBER = "any"
    """A series list or a number, as asPercent's `total`."""


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a render function."""

    name: str
    """Graphite's name, used for keyword arguments in targets."""
    type: ParamType
    required: bool = False
    default: LiteralValue = None
    multiple: bool = False
    """Takes all remaining positional arguments (like `*seriesLists`)."""
    options: tuple[str, ...] = ()
    """Allowed string values; empty means any value of the type."""

    @property
    def python_name(self) -> str:
        """The keyword under which the implementation receives the argument."""
        return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", self.name).lower()


@dataclass(frozen=True, slots=True)
class EvalContext:
    """Request state passed to a render function next to its arguments."""

    store: TimeSeriesStore
    from_s: int
    until_s: int
    evaluator: Callable[[Node, EvalContext], list[TimeSeries]]
    """Function that evaluates a node under a context, set by the render module."""
    arg_nodes: Mapping[str, Node] = field(default_factory=dict)
    """Syntax tree of each argument of the current call, by parameter name."""
    now: int | None = None
    """Request time in epoch seconds; fetches end there at the latest, as whisper's."""
    tz: dt.tzinfo = dt.UTC
    """Time zone of the request, for functions that align to calendar units."""
    call: Call | None = None
    """The call being evaluated, for functions that name themselves by its text."""

    def evaluate(
        self, node: Node, from_s: int | None = None, until_s: int | None = None
    ) -> list[TimeSeries]:
        """Evaluate `node` again, optionally over another time range."""
        context = dataclasses.replace(
            self,
            from_s=self.from_s if from_s is None else from_s,
            until_s=self.until_s if until_s is None else until_s,
        )
        return self.evaluator(node, context)


RenderFunction = Callable[..., list[TimeSeries]]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A render function: name, parameters and implementation."""

    name: str
    group: str
    params: tuple[Param, ...]
    implementation: RenderFunction
    """Called as implementation(context, **bound) with python_name keywords."""
    pushdown: (
        Callable[[FunctionSpec, EvalContext, Call], list[TimeSeries] | None] | None
    ) = None
    """Computes the call in the store when it can, else returns None."""


def bind_arguments(
    spec: FunctionSpec, call: Call, context: EvalContext, evaluate_series: bool = True
) -> tuple[dict[str, Any], dict[str, Node]]:
    """Check a call against its spec and evaluate its series arguments.

    Returns the keyword arguments for the implementation and the syntax tree
    of each argument by parameter name. Multiple series-list arguments are
    flattened into one list. Without `evaluate_series`, series-list
    arguments are bound to None and only their syntax trees are returned.
    """
    assigned = _assign_nodes(spec, call)
    bound: dict[str, Any] = {}
    nodes: dict[str, Node] = {}
    # Literal arguments are checked first, so a bad one fails before any fetch.
    ordered = sorted(spec.params, key=lambda p: p.type is ParamType.SERIES_LIST)
    for param in ordered:
        given = assigned.get(param.name, [])
        if not given:
            if param.required:
                raise QueryError(
                    f"{spec.name}: missing required argument {param.name!r}"
                )
            bound[param.python_name] = [] if param.multiple else param.default
            continue
        nodes[param.name] = given[0]
        if param.type is ParamType.SERIES_LIST and not evaluate_series:
            bound[param.python_name] = None
            continue
        converted = [_convert(spec, param, node, context) for node in given]
        if param.type is ParamType.SERIES_LIST:
            flat = [series for value in converted for series in value]
            bound[param.python_name] = flat
        elif param.multiple:
            bound[param.python_name] = converted
        else:
            bound[param.python_name] = converted[0]
    return bound, nodes


def _assign_nodes(spec: FunctionSpec, call: Call) -> dict[str, list[Node]]:
    assigned: dict[str, list[Node]] = {}
    params = list(spec.params)
    index = 0
    for node in call.args:
        if index >= len(params):
            raise QueryError(
                f"{spec.name}: takes at most {len(params)} arguments, "
                f"got {len(call.args)}"
            )
        param = params[index]
        assigned.setdefault(param.name, []).append(node)
        if not param.multiple:
            index += 1
    by_name = {param.name: param for param in params}
    for keyword, node in call.kwargs:
        if keyword not in by_name:
            known = ", ".join(param.name for param in params)
            raise QueryError(
                f"{spec.name}: unknown argument {keyword!r}; parameters are {known}"
            )
        if keyword in assigned:
            raise QueryError(f"{spec.name}: argument {keyword!r} given twice")
        assigned[keyword] = [node]
    return assigned


def _convert(spec: FunctionSpec, param: Param, node: Node, context: EvalContext) -> Any:
    where = f"{spec.name}: argument {param.name!r}"
    if param.type is ParamType.SERIES_OR_NUMBER and not isinstance(node, Literal):
        return context.evaluate(node)
    if param.type is ParamType.SERIES_LIST:
        if isinstance(node, Literal):
            raise QueryError(
                f"{where} must be a series list (a path or a function call), "
                f"got {node.value!r}"
            )
        return context.evaluate(node)
    if isinstance(node, PathExpression):
        raise QueryError(
            f"{where} must be {_describe(param.type)}, got the path {node.path!r}; "
            "quote it if it is a string"
        )
    if isinstance(node, Call):
        raise QueryError(
            f"{where} must be {_describe(param.type)}, got a call to {node.name}()"
        )
    value = node.value
    if value is None and not param.required:
        return param.default
    try:
        checked = _check_literal(param, value)
    except QueryError as err:
        raise QueryError(f"{where}: {err}") from err
    if checked is None:
        raise QueryError(f"{where} must be {_describe(param.type)}, got {value!r}")
    if param.options and checked not in param.options:
        raise QueryError(
            f"{where} must be one of {', '.join(param.options)}, got {value!r}"
        )
    return checked


def _check_literal(param: Param, value: LiteralValue) -> Any:
    """Return the value converted for the parameter type, or None if invalid."""
    kind = param.type
    if kind is ParamType.INTEGER:
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind is ParamType.FLOAT:
        # graphite-web converts float parameters, so 42 is named "42.0".
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None
    if kind is ParamType.INT_OR_INF:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value == float("inf"):
            return value
        return None
    if kind is ParamType.SERIES_OR_NUMBER:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        return None
    if kind is ParamType.STRING:
        return value if isinstance(value, str) else None
    if kind is ParamType.BOOLEAN:
        return value if isinstance(value, bool) else None
    if kind is ParamType.INTERVAL:
        if isinstance(value, str):
            parse_interval(value)
            return value
        return None
    if kind is ParamType.INT_OR_INTERVAL:
        if isinstance(value, int) and not isinstance(value, bool):
            return value if value > 0 else None
        if isinstance(value, str):
            parse_interval(value)
            return value
        return None
    if kind is ParamType.NODE_OR_TAG:
        if isinstance(value, bool):
            return None
        return value if isinstance(value, int | str) else None
    if kind is ParamType.AGG_FUNC:
        return (
            value if isinstance(value, str) and value in AGGREGATION_ALIASES else None
        )
    return None


def _describe(kind: ParamType) -> str:
    return {
        ParamType.SERIES_LIST: "a series list",
        ParamType.INTEGER: "an integer",
        ParamType.FLOAT: "a number",
        ParamType.STRING: "a quoted string",
        ParamType.BOOLEAN: "true or false",
        ParamType.INTERVAL: "an interval string such as '5min' or '1h'",
        ParamType.INT_OR_INTERVAL: (
            "a positive number of points or an interval string such as '5min'"
        ),
        ParamType.NODE_OR_TAG: "a node index or a tag name",
        ParamType.INT_OR_INF: "an integer",
        ParamType.SERIES_OR_NUMBER: "a series list or a number",
        ParamType.AGG_FUNC: (
            "an aggregation function name (" + ", ".join(AGGREGATION_ALIASES) + ")"
        ),
    }[kind]
