"""Graphite tags: tag expressions, seriesByTag, groupByTags and autocomplete.

A tagged series is stored under graphite's name `name;tag1=v1;tag2=v2` with
its tags in SeriesMeta.tags. Series from gateways are tagged too (quantity,
unit, device) and so are found by tag. Series without tags are left out, as
graphite-web's tag database knows only tagged series.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from citymesh.errors import QueryError
from citymesh.query.grammar import parse_target
from citymesh.query.registry import EvalContext
from citymesh.query.selection import alias_by_node, apply_callback
from citymesh.query.series import TagValue, TimeSeries, fetch_metas, series_tags
from citymesh.query.transform import rename
from citymesh.storage.base import SeriesMeta, TimeSeriesStore

logger = logging.getLogger(__name__)

_EXPRESSION_RE = re.compile(r"^([^!=~;]+)(!=~|=~|!=|=)(.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class TagExpression:
    """One seriesByTag condition such as `host=~web.*`."""

    tag: str
    operator: str
    value: str

    def matches(self, tags: Mapping[str, str]) -> bool:
        """Tell whether a series with these tags meets the condition."""
        actual = tags.get(self.tag, "")
        if self.operator == "=":
            return actual == self.value
        if self.operator == "!=":
            return actual != self.value
        found = re.match(self.value, actual) is not None
        return found if self.operator == "=~" else not found

    @property
    def is_positive(self) -> bool:
        """True when it cannot match a series that lacks the tag."""
        return not self.matches({})


def parse_tag_expression(text: str) -> TagExpression:
    """Parse `tag=value`, `tag!=value`, `tag=~regex` or `tag!=~regex`."""
    match = _EXPRESSION_RE.match(text)
    if match is None:
        raise QueryError(
            f"seriesByTag: invalid tag expression {text!r}: use tag=value, "
            "tag!=value, tag=~regex or tag!=~regex"
        )
    expression = TagExpression(match.group(1), match.group(2), match.group(3))
    if "~" in expression.operator:
        try:
            re.compile(expression.value)
        except re.error as err:
            raise QueryError(
                f"seriesByTag: invalid regular expression in {text!r}: {err}"
            ) from err
    return expression


def format_tagged_name(tags: Mapping[str, TagValue]) -> str:
    """Build graphite's `name;a=1;b=2` with the tags sorted."""
    rest = sorted(f";{key}={value}" for key, value in tags.items() if key != "name")
    return str(tags.get("name", "")) + "".join(rest)


def parse_tagged_name(path: str) -> dict[str, TagValue]:
    """Split graphite's `name;a=1;b=2` into tags, `name` included."""
    name, *pairs = path.split(";")
    tags: dict[str, TagValue] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        tags[key] = value
    tags["name"] = name
    return tags


def tagged_metas(store: TimeSeriesStore) -> list[tuple[SeriesMeta, dict[str, str]]]:
    """Return every tagged series with its tags as strings, `name` included."""
    found = []
    for meta in store.series():
        if not meta.tags and ";" not in meta.name:
            continue
        tags = {key: str(value) for key, value in series_tags(meta).items()}
        found.append((meta, tags))
    return found


def find_by_tags(
    store: TimeSeriesStore, expressions: Sequence[str]
) -> list[SeriesMeta]:
    """Return the tagged series that meet every expression, sorted by name."""
    if not expressions:
        raise QueryError("seriesByTag: at least one tag expression is required")
    parsed = [parse_tag_expression(text) for text in expressions]
    if not any(expression.is_positive for expression in parsed):
        raise QueryError(
            "seriesByTag: at least one expression must require a tag value, "
            "such as name=cpu or host=~web.*"
        )
    matched = [
        meta
        for meta, tags in tagged_metas(store)
        if all(expression.matches(tags) for expression in parsed)
    ]
    return sorted(matched, key=lambda meta: meta.name)


def series_by_tag(context: EvalContext, tag_expressions: list[str]) -> list[TimeSeries]:
    """Fetch the series whose tags meet every expression."""
    metas = find_by_tags(context.store, tag_expressions)
    raw = context.call.raw if context.call is not None else "seriesByTag()"
    until_s = context.until_s
    if context.now is not None:
        until_s = min(until_s, context.now)
    return fetch_metas(context.store, metas, raw, context.from_s, until_s)


def group_by_tags(
    context: EvalContext, series_list: list[TimeSeries], callback: str, tags: list[str]
) -> list[TimeSeries]:
    """Combine the series that share the given tag values, named by them."""
    if not tags:
        raise QueryError("groupByTags: argument 'tags' needs at least one tag")
    if "name" not in tags:
        names = {str(series.tags.get("name", "")) for series in series_list}
        common = names.pop() if len(names) == 1 else callback
    groups: dict[str, list[TimeSeries]] = {}
    for series in series_list:
        pairs = sorted(
            f"{tag}={series.tags.get(tag, '')}" for tag in tags if tag != "name"
        )
        head = str(series.tags.get("name", "")) if "name" in tags else common
        groups.setdefault(";".join([head, *pairs]), []).append(series)
    results = []
    for key, members in groups.items():
        combined = apply_callback("groupByTags", callback, members)
        results.append(
            combined.derive(name=key, path_expression=key, tags=parse_tagged_name(key))
        )
    return results


def alias_by_tags(
    context: EvalContext, series_list: list[TimeSeries], tags: list[int | str]
) -> list[TimeSeries]:
    """Rename each series to the values of the given tags (or nodes)."""
    return alias_by_node(context, series_list, tags)


def apply_by_node(
    context: EvalContext,
    series_list: list[TimeSeries],
    node_num: int,
    template_function: str,
    new_name: str | None,
) -> list[TimeSeries]:
    """Evaluate a template once per distinct prefix, `%` standing for the prefix."""
    prefixes = sorted(
        {".".join(s.name.split(".")[: node_num + 1]) for s in series_list}
    )
    if not series_list:
        return []
    last = series_list[-1]
    results = []
    for prefix in prefixes:
        node = parse_target(template_function.replace("%", prefix))
        for series in context.evaluate(node):
            name = new_name.replace("%", prefix) if new_name else series.name
            count = min(len(series), len(last) + 1)
            results.append(
                rename(series, name, series.values[:count]).derive(
                    path_expression=prefix,
                    start=last.start,
                    end=last.start + count * series.step,
                )
            )
    return results


def tag_names(store: TimeSeriesStore, prefix: str = "", limit: int = 100) -> list[str]:
    """Return the distinct tag names starting with `prefix`, sorted."""
    names = {tag for _, tags in tagged_metas(store) for tag in tags}
    return sorted(name for name in names if name.startswith(prefix))[:limit]


def tag_values(
    store: TimeSeriesStore,
    tag: str,
    expressions: Sequence[str] = (),
    prefix: str = "",
    limit: int = 100,
) -> list[str]:
    """Return the distinct values of a tag among the series meeting `expressions`."""
    parsed = [parse_tag_expression(text) for text in expressions]
    values = {
        tags[tag]
        for _, tags in tagged_metas(store)
        if tag in tags and all(expression.matches(tags) for expression in parsed)
    }
    return sorted(value for value in values if value.startswith(prefix))[:limit]
