"""Errors of the IQRF connector, below citymesh.errors.CitymeshError.

IqrfError
 +-- DpaTimeout     a DPA request got no response in time (node asleep, out of range)
 +-- DpaError       the network answered with a DPA error code
"""

from __future__ import annotations

from citymesh.errors import CitymeshError


class IqrfError(CitymeshError):
    """Base of every error of the IQRF connector."""


class DpaTimeout(IqrfError, TimeoutError):
    """A DPA request to a node got no response within its timeout."""

    def __init__(self, nadr: int, command: str, timeout_s: float) -> None:
        super().__init__(
            f"node {nadr} did not answer {command} within {timeout_s:g} s; it may be "
            "offline, asleep or out of range"
        )
        self.nadr = nadr
        self.command = command


class DpaError(IqrfError):
    """A DPA response carried an error code (rcode other than 0)."""

    def __init__(self, nadr: int, command: str, rcode: int, name: str) -> None:
        super().__init__(f"node {nadr} rejected {command}: DPA error {rcode} ({name})")
        self.nadr = nadr
        self.command = command
        self.rcode = rcode
