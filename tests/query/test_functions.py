"""Tests for render functions: exact values, names, nulls and argument errors."""

from __future__ import annotations

import pytest

from citymesh.errors import QueryError
from citymesh.query import combine, functions, selection, transform, windows
from citymesh.query.registry import EvalContext
from citymesh.query.render import evaluate, evaluate_node
from citymesh.storage.duckdb_store import DuckDBStore

from .conftest import WritePoints
from .helpers import T0, as_list, make_series


@pytest.fixture
def context(store: DuckDBStore) -> EvalContext:
    """A context for calling functions directly on hand-made series."""
    return EvalContext(
        store=store, from_s=T0, until_s=T0 + 3600, evaluator=evaluate_node
    )


# sumSeries / averageSeries


def test_sum_series_skips_nulls(context: EvalContext) -> None:
    a = make_series("a.b.x", T0, 60, [1, None, 3, None], path_expression="a.b.*")
    b = make_series("a.b.y", T0, 60, [10, 20, None, None], path_expression="a.b.*")
    (result,) = combine.sum_series(context, [a, b])
    assert as_list(result.values) == [11.0, 20.0, 3.0, None]
    assert result.name == "sumSeries(a.b.*)"
    assert result.path_expression == "sumSeries(a.b.*)"
    assert (result.start, result.end, result.step) == (T0, T0 + 240, 60)


def test_sum_series_tags(context: EvalContext) -> None:
    a = make_series("a.b.x", T0, 60, [1], path_expression="a.b.*", tags={"unit": "C"})
    b = make_series(
        "a.b.y", T0, 60, [2], path_expression="a.b.*", tags={"unit": "C", "k": "v"}
    )
    (result,) = combine.sum_series(context, [a, b])
    assert result.tags == {
        "unit": "C",
        "name": "sumSeries(a.b.*)",
        "aggregatedBy": "sum",
    }


def test_average_series_skips_nulls(context: EvalContext) -> None:
    a = make_series("a.b.x", T0, 60, [1, None, 3, None], path_expression="a.b.*")
    b = make_series("a.b.y", T0, 60, [10, 20, None, None], path_expression="a.b.*")
    (result,) = combine.average_series(context, [a, b])
    assert as_list(result.values) == [5.5, 20.0, 3.0, None]
    assert result.name == "averageSeries(a.b.*)"
    assert result.tags["aggregatedBy"] == "average"


def test_sum_series_names_distinct_paths_in_order(context: EvalContext) -> None:
    a = make_series("a.y", T0, 60, [1])
    b = make_series("a.x", T0, 60, [2])
    c = make_series("a.y", T0, 60, [3])
    (result,) = combine.sum_series(context, [a, b, c])
    assert result.name == "sumSeries(a.y,a.x)"
    assert as_list(result.values) == [6.0]


def test_sum_series_empty_list(context: EvalContext) -> None:
    assert combine.sum_series(context, []) == []
    assert combine.average_series(context, []) == []


def test_sum_series_normalises_to_lcm_step(context: EvalContext) -> None:
    # a: step 60 over [T0, T0+240); b: step 120. LCM 120, a averaged per pair.
    a = make_series("a", T0, 60, [1, 2, 3, 4])
    b = make_series("b", T0, 120, [10, 20])
    (result,) = combine.sum_series(context, [a, b])
    assert result.step == 120
    assert as_list(result.values) == [11.5, 23.5]


def test_sum_series_steps_not_multiples(context: EvalContext) -> None:
    # Steps 40 and 60 combine at 120.
    a = make_series("a", T0, 40, [1, 2, 3, 4, 5, 6])
    b = make_series("b", T0, 60, [10, None, 30, 40])
    (result,) = combine.average_series(context, [a, b])
    assert result.step == 120
    # a -> [2, 5], b -> [10, 35]; averages of the two consolidated series.
    assert as_list(result.values) == [6.0, 20.0]


# summarize


def test_summarize_unaligned_start(context: EvalContext) -> None:
    # Points at T0+20min .. T0+70min: four in the first hour, two in the second.
    series = make_series("a.b.c", T0 + 1200, 600, [1, 2, 3, 4, 5, 6])
    (result,) = windows.summarize(context, [series], "1h", "avg", False)
    assert (result.start, result.end) == (T0, T0 + 7200)
    assert as_list(result.values) == [2.5, 5.5]
    assert result.name == 'summarize(a.b.c, "1h", "avg")'


def test_summarize_align_to_from(context: EvalContext) -> None:
    series = make_series("a.b.c", T0 + 1200, 600, [1, 2, 3, 4, 5, 6, 7])
    (result,) = windows.summarize(context, [series], "1h", "max", True)
    assert (result.start, result.end) == (T0 + 1200, T0 + 1200 + 7200)
    assert as_list(result.values) == [6.0, 7.0]
    assert result.name == 'summarize(a.b.c, "1h", "max", true)'


# scale, alias, aliasByNode


def test_scale_values_and_name(context: EvalContext) -> None:
    series = make_series("a.b.c", T0, 60, [1, None, -2])
    (result,) = transform.scale(context, [series], 2.5)
    assert as_list(result.values) == [2.5, None, -5.0]
    assert result.name == "scale(a.b.c,2.5)"
    assert result.path_expression == "scale(a.b.c,2.5)"
    assert result.tags["scale"] == 2.5


@pytest.mark.parametrize(
    ("factor", "name"),
    [
        (2, "scale(a,2)"),
        (0.0001, "scale(a,0.0001)"),
        (1e-05, "scale(a,1e-05)"),
        (-3.0, "scale(a,-3)"),
        (1234567.0, "scale(a,1.23457e+06)"),
    ],
)
def test_scale_name_uses_g_format(
    context: EvalContext, factor: float, name: str
) -> None:
    (result,) = transform.scale(context, [make_series("a", T0, 60, [1])], factor)
    assert result.name == name


def test_alias_keeps_path_expression(context: EvalContext) -> None:
    series = make_series("a.b.c", T0, 60, [1], path_expression="a.b.*")
    (result,) = selection.alias(context, [series], "Room temperature")
    assert result.name == "Room temperature"
    assert result.path_expression == "a.b.*"
    assert as_list(result.values) == [1.0]


def test_alias_by_node_positive_and_negative(context: EvalContext) -> None:
    series = make_series("demo.city.gw-1.dev1.temperature", T0, 60, [1])
    (result,) = selection.alias_by_node(context, [series], [2, -1])
    assert result.name == "gw-1.temperature"
    (first,) = selection.alias_by_node(context, [series], [-5])
    assert first.name == "demo"


def test_alias_by_node_function_wrapped_name(context: EvalContext) -> None:
    series = make_series('summarize(demo.city.gw-1.dev1.co2, "1h", "sum")', T0, 60, [1])
    (result,) = selection.alias_by_node(context, [series], [3, 4])
    assert result.name == "dev1.co2"


def test_alias_by_node_tag_name(context: EvalContext) -> None:
    series = make_series("a.b.c", T0, 60, [1], tags={"unit": "ppm"})
    (result,) = selection.alias_by_node(context, [series], [0, "unit", "missing"])
    assert result.name == "a.ppm."


# movingAverage, evaluated against the store because it fetches a bootstrap window


def _minutes(values: dict[int, float]) -> dict[float, float]:
    return {T0 + 60 * minute: value for minute, value in values.items()}


def test_moving_average_empty_match(store: DuckDBStore) -> None:
    assert evaluate(["movingAverage(no.such.series,3)"], store, T0, T0 + 600) == []


# Argument checking through the registry


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("fooBar(a.b)", "unknown function 'fooBar' at position 0"),
        ("scale(a.b)", "scale: missing required argument 'factor'"),
        ("scale(a.b, 'x')", "scale: argument 'factor' must be a number, got 'x'"),
        (
            "scale(a.b, c.d)",
            "scale: argument 'factor' must be a number, got the path 'c.d'",
        ),
        ("scale(a.b, true)", "scale: argument 'factor' must be a number, got True"),
        ("scale(a.b, factor=2, foo=1)", "scale: unknown argument 'foo'"),
        ("alias(a.b, 'x', 'y')", "alias: takes at most 2 arguments, got 3"),
        ("sumSeries(5)", "sumSeries: argument 'seriesLists' must be a series list"),
        (
            "summarize(a.b, '1x')",
            "summarize: argument 'intervalString': invalid time unit",
        ),
        (
            "summarize(a.b, 3600)",
            "summarize: argument 'intervalString' must be an interval",
        ),
        (
            "summarize(a.b, '1h', 'bogus')",
            "summarize: argument 'func' must be an aggregation",
        ),
        (
            "summarize(a.b, '1h', 'sum', 'yes')",
            "argument 'alignToFrom' must be true or false",
        ),
        (
            "movingAverage(a.b, 0)",
            "movingAverage: argument 'windowSize' must be a positive",
        ),
        (
            "movingAverage(a.b, 2.5)",
            "movingAverage: argument 'windowSize' must be a positive",
        ),
        ("aliasByNode(a.b)", "aliasByNode: missing required argument 'nodes'"),
        ("aliasByNode(a.b, 1.5)", "aliasByNode: argument 'nodes' must be a node index"),
        (
            "alias(a.b, newName=sumSeries(a.b))",
            "must be a quoted string, got a call to sumSeries()",
        ),
        ("scale(factor=2)", "scale: missing required argument 'seriesList'"),
        ("scale(a.b, 2, factor=3)", "scale: argument 'factor' given twice"),
    ],
)
def test_registry_rejects_bad_arguments(
    store: DuckDBStore, target: str, message: str
) -> None:
    with pytest.raises(QueryError) as caught:
        evaluate([target], store, T0, T0 + 600)
    assert message in str(caught.value)


def test_registry_keyword_arguments(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.b.c", {T0 + 60 * m: 1.0 for m in range(120)})
    (result,) = evaluate(
        ["summarize(seriesList=a.b.c, intervalString='1h', func='count')"],
        store,
        T0,
        T0 + 7200,
    )
    # The grid starts at T0+60, and graphite-web adds an empty bucket after
    # an aligned end.
    assert as_list(result.values) == [59.0, 60.0, None]


def test_registry_short_forms(store: DuckDBStore, write_points: WritePoints) -> None:
    write_points("a.x.c", {T0: 1.0})
    write_points("a.y.c", {T0: 3.0})
    (total,) = evaluate(["sum(a.*.c)"], store, T0 - 60, T0)
    (mean,) = evaluate(["avg(a.*.c)"], store, T0 - 60, T0)
    assert (total.name, as_list(total.values)) == ("sumSeries(a.*.c)", [4.0])
    assert (mean.name, as_list(mean.values)) == ("averageSeries(a.*.c)", [2.0])


def test_registry_specs_have_unique_snake_case_keywords() -> None:
    for name, spec in functions.FUNCTIONS.items():
        keywords = [param.python_name for param in spec.params]
        assert len(set(keywords)) == len(keywords), name
        assert all(keyword.islower() for keyword in keywords), name


def test_summarize_rejects_too_many_buckets(
    store: DuckDBStore, write_points: WritePoints
) -> None:
    write_points("a.b.c", {T0: 1.0})
    with pytest.raises(
        QueryError, match=r"summarize of a\.b\.c would hold 3600001 points"
    ):
        evaluate(["summarize(a.b.c, '1s')"], store, T0, T0 + 3_600_000)


def test_registry_checks_literals_before_fetch(store: DuckDBStore) -> None:
    # The inner call is invalid too, but the outer literal is reported first,
    # which shows that no series argument was evaluated.
    with pytest.raises(QueryError, match="scale: argument 'factor' must be a number"):
        evaluate(["scale(fooBar(a.b), 'x')"], store, T0, T0 + 600)
