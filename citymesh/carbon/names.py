"""Validation of carbon metric paths and Graphite's tagged form `name;tag=value`.

A path is dotted nodes without empty nodes. Nodes may hold letters, digits
and `_ - : @ # % + ~ ! $ & | ^ < >`, but not whitespace, control characters,
quotes, glob characters (`* ? [ ] { }`), commas, parentheses or slashes,
because those would make the name impossible to address in a render target.
Tags follow graphite-web 1.1's `TaggedSeries.parse_carbon`: a tag name is
not empty and holds none of `; ! ^ =`, and a value is not empty, holds no
`;` and does not start with `~`. Tags are sorted by name, as graphite-web
formats them, so one series has one name.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

_NODE = r"[A-Za-z0-9_\-:@#%+~!$&|^<>]+"
_PATH = re.compile(rf"{_NODE}(?:\.{_NODE})*")
# Printable ASCII without spaces, for tag names and values.
_TAG_TEXT = re.compile(r"[!-~]+")
_TAG_NAME_FORBIDDEN = set(";!^=")


class InvalidName(ValueError):
    """A carbon path breaks the naming rules; the message says which."""


@dataclass(frozen=True, slots=True)
class MetricName:
    """A validated carbon path: the dotted name and its tags."""

    path: str
    """The dotted name without tags."""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def series_name(self) -> str:
        """The name stored: the path, then `;tag=value` sorted by tag."""
        return self.path + "".join(f";{k}={v}" for k, v in sorted(self.tags.items()))


def parse_name(raw: bytes) -> MetricName:
    """Validate a carbon path, tagged or not; raise InvalidName if it breaks a rule."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidName(f"path {raw[:200]!r} is not ASCII") from None
    path, *segments = text.split(";")
    if not path:
        raise InvalidName(f"path {text!r} has no metric name before its tags")
    if _PATH.fullmatch(path) is None:
        raise InvalidName(
            f"path {path!r} has an empty node or a character outside "
            "letters, digits and _-:@#%+~!$&|^<>"
        )
    tags: dict[str, str] = {}
    for segment in segments:
        tag, sep, value = segment.partition("=")
        if not sep or not tag:
            raise InvalidName(f"tag segment {segment!r} of {text!r} is not tag=value")
        if _TAG_NAME_FORBIDDEN & set(tag) or _TAG_TEXT.fullmatch(tag) is None:
            raise InvalidName(f"tag name {tag!r} of {text!r} has a forbidden character")
        if not value or value.startswith("~") or _TAG_TEXT.fullmatch(value) is None:
            raise InvalidName(
                f"value {value!r} of tag {tag!r} is empty, starts with '~' or "
                "holds a space or control character"
            )
        if tag != "name":
            # graphite-web sets the `name` tag to the path, whatever was sent.
            tags[tag] = value
    return MetricName(path, tags)
