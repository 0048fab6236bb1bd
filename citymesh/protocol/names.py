"""Identifiers for tenants, sites, gateways, devices and series names."""

from __future__ import annotations

import re

# One node of a dotted series name. Dots separate nodes and Graphite globs use
# `*?[]{}`, so none of those may appear inside an identifier.
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_\-]{0,62}"
_ID_RE = re.compile(ID_PATTERN)


def is_identifier(value: str) -> bool:
    """Tell whether `value` may be used as one node of a series name."""
    return _ID_RE.fullmatch(value) is not None


def check_identifier(value: str, what: str) -> str:
    """Return `value` unchanged or raise ValueError saying what is allowed."""
    if not is_identifier(value):
        raise ValueError(
            f"invalid {what} {value!r}: use 1-63 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def series_name(
    tenant: str, site: str, gateway: str, device: str, quantity: str
) -> str:
    """Build the dotted series name `<tenant>.<site>.<gateway>.<device>.<quantity>`."""
    return ".".join((tenant, site, gateway, device, quantity))
