"""The catalog of render functions: Graphite names, parameters and implementations.

Implementations live in modules by concept (combine, transform, windows,
selection, tags). To add a function, write it with the signature
`(context, **arguments)` and add a FunctionSpec below.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from citymesh.query import combine, pushdown, selection, tags, transform, windows
from citymesh.query.registry import FunctionSpec, Param, ParamType

logger = logging.getLogger(__name__)

SERIES_LISTS = Param("seriesLists", ParamType.SERIES_LIST, required=True, multiple=True)
SERIES_LIST = Param("seriesList", ParamType.SERIES_LIST, required=True)
_P = ParamType


def _p(name: str, kind: ParamType, default: object = None, **options: object) -> Param:
    return Param(name, kind, default=default, **options)  # type: ignore[arg-type]


def _req(name: str, kind: ParamType, **options: object) -> Param:
    return Param(name, kind, required=True, **options)  # type: ignore[arg-type]


def _spec(
    name: str, group: str, implementation: object, *params: Param, **extra: object
) -> FunctionSpec:
    return FunctionSpec(name, group, params, implementation, **extra)  # type: ignore[arg-type]


_WINDOW = (_req("windowSize", _P.INT_OR_INTERVAL), _p("xFilesFactor", _P.FLOAT))
_MAX_MIN = (_p("maxValue", _P.FLOAT), _p("minValue", _P.FLOAT))
_N_INT = _req("n", _P.INTEGER)
_N_FLOAT = _req("n", _P.FLOAT)
_CONSOLIDATIONS = ("sum", "average", "avg", "avg_zero", "min", "max", "first", "last")

_SPECS = (
    # Combine
    _spec("sumSeries", "Combine", combine.sum_series, SERIES_LISTS),
    _spec("averageSeries", "Combine", combine.average_series, SERIES_LISTS),
    _spec("minSeries", "Combine", combine.min_series, SERIES_LISTS),
    _spec("maxSeries", "Combine", combine.max_series, SERIES_LISTS),
    _spec("diffSeries", "Combine", combine.diff_series, SERIES_LISTS),
    _spec("multiplySeries", "Combine", combine.multiply_series, SERIES_LISTS),
    _spec("stddevSeries", "Combine", combine.stddev_series, SERIES_LISTS),
    _spec("countSeries", "Combine", combine.count_series, SERIES_LISTS),
    _spec("group", "Combine", combine.group, SERIES_LISTS),
    _spec(
        "divideSeries",
        "Combine",
        combine.divide_series,
        _req("dividendSeriesList", _P.SERIES_LIST),
        _req("divisorSeries", _P.SERIES_LIST),
    ),
    _spec(
        "asPercent",
        "Combine",
        combine.as_percent,
        SERIES_LIST,
        _p("total", _P.SERIES_OR_NUMBER),
        Param("nodes", _P.NODE_OR_TAG, multiple=True),
    ),
    _spec(
        "percentileOfSeries",
        "Combine",
        combine.percentile_of_series,
        SERIES_LIST,
        _N_FLOAT,
        _p("interpolate", _P.BOOLEAN, False),
    ),
    _spec(
        "groupByNode",
        "Combine",
        selection.group_by_node,
        SERIES_LIST,
        _req("nodeNum", _P.NODE_OR_TAG),
        _p("callback", _P.STRING, "average"),
    ),
    _spec(
        "groupByNodes",
        "Combine",
        selection.group_by_nodes,
        SERIES_LIST,
        _req("callback", _P.STRING),
        Param("nodes", _P.NODE_OR_TAG, multiple=True),
    ),
    _spec(
        "groupByTags",
        "Combine",
        tags.group_by_tags,
        SERIES_LIST,
        _req("callback", _P.STRING),
        Param("tags", _P.STRING, required=True, multiple=True),
    ),
    _spec(
        "applyByNode",
        "Combine",
        tags.apply_by_node,
        SERIES_LIST,
        _req("nodeNum", _P.INTEGER),
        _req("templateFunction", _P.STRING),
        _p("newName", _P.STRING),
    ),
    # Transform
    _spec("scale", "Transform", transform.scale, SERIES_LIST, _req("factor", _P.FLOAT)),
    _spec(
        "offset", "Transform", transform.offset, SERIES_LIST, _req("factor", _P.FLOAT)
    ),
    _spec("absolute", "Transform", transform.absolute, SERIES_LIST),
    _spec("derivative", "Transform", transform.derivative, SERIES_LIST),
    _spec(
        "nonNegativeDerivative",
        "Transform",
        transform.non_negative_derivative,
        SERIES_LIST,
        *_MAX_MIN,
    ),
    _spec("perSecond", "Transform", transform.per_second, SERIES_LIST, *_MAX_MIN),
    _spec("integral", "Transform", transform.integral, SERIES_LIST),
    _spec(
        "keepLastValue",
        "Transform",
        transform.keep_last_value,
        SERIES_LIST,
        _p("limit", _P.INT_OR_INF),
    ),
    _spec(
        "transformNull",
        "Transform",
        transform.transform_null,
        SERIES_LIST,
        _p("default", _P.FLOAT, 0),
        Param("referenceSeries", _P.SERIES_LIST),
    ),
    _spec(
        "delay", "Transform", transform.delay, SERIES_LIST, _req("steps", _P.INTEGER)
    ),
    _spec(
        "timeShift",
        "Transform",
        transform.time_shift,
        SERIES_LIST,
        _req("timeShift", _P.INTERVAL),
        _p("resetEnd", _P.BOOLEAN, True),
        _p("alignDST", _P.BOOLEAN, False),
    ),
    _spec(
        "timeStack",
        "Transform",
        transform.time_stack,
        SERIES_LIST,
        _p("timeShiftUnit", _P.INTERVAL, "1d"),
        _p("timeShiftStart", _P.INTEGER, 0),
        _p("timeShiftEnd", _P.INTEGER, 7),
    ),
    _spec(
        "summarize",
        "Transform",
        windows.summarize,
        SERIES_LIST,
        _req("intervalString", _P.INTERVAL),
        _p("func", _P.AGG_FUNC, "sum"),
        _p("alignToFrom", _P.BOOLEAN, False),
        pushdown=pushdown.summarize,
    ),
    _spec(
        "smartSummarize",
        "Transform",
        windows.smart_summarize,
        SERIES_LIST,
        _req("intervalString", _P.INTERVAL),
        _p("func", _P.AGG_FUNC, "sum"),
        _p("alignTo", _P.STRING),
    ),
    _spec(
        "hitcount",
        "Transform",
        windows.hitcount,
        SERIES_LIST,
        _req("intervalString", _P.INTERVAL),
        _p("alignToInterval", _P.BOOLEAN, False),
    ),
    # Calculate
    _spec("movingAverage", "Calculate", windows.moving_average, SERIES_LIST, *_WINDOW),
    _spec("movingSum", "Calculate", windows.moving_sum, SERIES_LIST, *_WINDOW),
    _spec("movingMin", "Calculate", windows.moving_min, SERIES_LIST, *_WINDOW),
    _spec("movingMax", "Calculate", windows.moving_max, SERIES_LIST, *_WINDOW),
    _spec("movingMedian", "Calculate", windows.moving_median, SERIES_LIST, *_WINDOW),
    _spec("nPercentile", "Calculate", transform.n_percentile, SERIES_LIST, _N_FLOAT),
    # Filter
    _spec(
        "removeBelowValue",
        "Filter Data",
        transform.remove_below_value,
        SERIES_LIST,
        _N_FLOAT,
    ),
    _spec(
        "removeAboveValue",
        "Filter Data",
        transform.remove_above_value,
        SERIES_LIST,
        _N_FLOAT,
    ),
    _spec(
        "highestCurrent",
        "Filter Series",
        selection.highest_current,
        SERIES_LIST,
        _N_INT,
    ),
    _spec("highestMax", "Filter Series", selection.highest_max, SERIES_LIST, _N_INT),
    _spec(
        "highestAverage",
        "Filter Series",
        selection.highest_average,
        SERIES_LIST,
        _N_INT,
    ),
    _spec(
        "lowestCurrent", "Filter Series", selection.lowest_current, SERIES_LIST, _N_INT
    ),
    _spec(
        "lowestAverage", "Filter Series", selection.lowest_average, SERIES_LIST, _N_INT
    ),
    _spec(
        "currentAbove", "Filter Series", selection.current_above, SERIES_LIST, _N_FLOAT
    ),
    _spec(
        "currentBelow", "Filter Series", selection.current_below, SERIES_LIST, _N_FLOAT
    ),
    _spec(
        "averageAbove", "Filter Series", selection.average_above, SERIES_LIST, _N_FLOAT
    ),
    _spec(
        "maximumAbove", "Filter Series", selection.maximum_above, SERIES_LIST, _N_FLOAT
    ),
    _spec("limit", "Filter Series", selection.limit, SERIES_LIST, _N_INT),
    _spec(
        "exclude",
        "Filter Series",
        selection.exclude,
        SERIES_LIST,
        _req("pattern", _P.STRING),
    ),
    _spec(
        "grep", "Filter Series", selection.grep, SERIES_LIST, _req("pattern", _P.STRING)
    ),
    _spec("unique", "Filter Series", selection.unique, SERIES_LISTS),
    # Sorting
    _spec(
        "sortByName",
        "Sorting",
        selection.sort_by_name,
        SERIES_LIST,
        _p("natural", _P.BOOLEAN, False),
        _p("reverse", _P.BOOLEAN, False),
    ),
    _spec("sortByMaxima", "Sorting", selection.sort_by_maxima, SERIES_LIST),
    _spec(
        "sortBy",
        "Sorting",
        selection.sort_by,
        SERIES_LIST,
        _p("func", _P.AGG_FUNC, "average"),
        _p("reverse", _P.BOOLEAN, False),
    ),
    # Alias
    _spec("alias", "Alias", selection.alias, SERIES_LIST, _req("newName", _P.STRING)),
    _spec(
        "aliasByNode",
        "Alias",
        selection.alias_by_node,
        SERIES_LIST,
        Param("nodes", _P.NODE_OR_TAG, required=True, multiple=True),
    ),
    _spec(
        "aliasByTags",
        "Alias",
        tags.alias_by_tags,
        SERIES_LIST,
        Param("tags", _P.NODE_OR_TAG, required=True, multiple=True),
    ),
    _spec(
        "aliasSub",
        "Alias",
        selection.alias_sub,
        SERIES_LIST,
        _req("search", _P.STRING),
        _req("replace", _P.STRING),
    ),
    # Special
    _spec(
        "consolidateBy",
        "Special",
        transform.consolidate_by,
        SERIES_LIST,
        _req("consolidationFunc", _P.STRING, options=_CONSOLIDATIONS),
    ),
    _spec("cumulative", "Special", transform.cumulative, SERIES_LIST),
    _spec("constantLine", "Special", transform.constant_line, _req("value", _P.FLOAT)),
    _spec(
        "threshold",
        "Special",
        transform.threshold,
        _req("value", _P.FLOAT),
        _p("label", _P.STRING),
        _p("color", _P.STRING),
    ),
    _spec(
        "seriesByTag",
        "Special",
        tags.series_by_tag,
        Param("tagExpressions", _P.STRING, required=True, multiple=True),
    ),
)

FUNCTIONS: Mapping[str, FunctionSpec] = {spec.name: spec for spec in _SPECS}
"""Render functions by the name used in targets, short forms included."""

FUNCTIONS = {
    **FUNCTIONS,
    # Short forms that graphite-web accepts; results keep the long names.
    "sum": FUNCTIONS["sumSeries"],
    "avg": FUNCTIONS["averageSeries"],
}
