"""Parse carbon plaintext lines (`<path> <value> <timestamp>`) in bulk.

A buffer of complete lines is split into tokens by one `bytes.split` call and
the values and timestamps are converted by numpy, so the cost per line stays
well below a Python loop's. Only a buffer with a malformed line falls back to
splitting line by line, and even then only the lines are looped over, while
values are still converted in bulk.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

# Separates lines in the token stream; a NUL byte cannot occur in a valid line.
_MARK = b"\x00"

# Rejection reasons, counted per listener.
INVALID_LINE = "invalid_line"
EMPTY_PATH = "empty_path"
INVALID_VALUE = "invalid_value"
NON_FINITE_VALUE = "non_finite_value"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_NAME = "invalid_name"


@dataclass(slots=True)
class ParsedPoints:
    """Valid points of a buffer as columns, and what was rejected."""

    paths: list[bytes]
    values: npt.NDArray[np.float64]
    timestamps_ms: npt.NDArray[np.int64]
    rejected: Counter[str] = field(default_factory=Counter)
    samples: dict[str, bytes] = field(default_factory=dict)
    """One offending line or token per rejection reason, for the log."""

    @classmethod
    def empty(cls) -> ParsedPoints:
        """Return a result with no points and no rejections."""
        return cls([], np.empty(0), np.empty(0, np.int64))

    def reject(self, reason: str, sample: bytes, count: int = 1) -> None:
        """Count `count` rejections of one reason, keeping the first sample."""
        self.rejected[reason] += count
        self.samples.setdefault(reason, sample)


def parse_plaintext(data: bytes, now_s: float) -> ParsedPoints:
    """Parse complete newline-terminated lines; `now_s` replaces a timestamp of -1.

    Trailing spaces, tabs and `\\r\\n` line ends are accepted, blank lines are
    ignored. Invalid lines are counted and left out, and the valid lines
    around them are kept.
    """
    marked = data.replace(b"\n", b" \x00 ")
    tokens = marked.split()
    lines = len(tokens) // 4
    if (
        len(tokens) % 4 == 0
        and tokens[3::4].count(_MARK) == lines
        and marked.count(_MARK) == lines
    ):
        parsed = ParsedPoints.empty()
        return _convert(parsed, tokens[0::4], tokens[1::4], tokens[2::4], now_s)
    return _parse_by_line(data, now_s)


def _parse_by_line(data: bytes, now_s: float) -> ParsedPoints:
    parsed = ParsedPoints.empty()
    paths: list[bytes] = []
    values: list[bytes] = []
    stamps: list[bytes] = []
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) == 3 and _MARK not in line:
            paths.append(parts[0])
            values.append(parts[1])
            stamps.append(parts[2])
        elif not parts:
            continue
        elif len(parts) == 2 and line[:1] in (b" ", b"\t"):
            parsed.reject(EMPTY_PATH, line)
        else:
            parsed.reject(INVALID_LINE, line)
    return _convert(parsed, paths, values, stamps, now_s)


def to_floats(
    tokens: list[bytes], integers: bool = False
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Convert number tokens to floats; return the values and which ones parsed.

    With `integers`, whole numbers are tried first, which is faster for
    timestamps. Python's `float` accepts what carbon accepts, because carbon
    parses with it too.
    """
    count = len(tokens)
    try:
        if integers:
            whole = np.fromiter(map(int, tokens), np.int64, count)
            return whole.astype(np.float64), np.ones(count, dtype=bool)
        return np.fromiter(map(float, tokens), np.float64, count), np.ones(
            count, dtype=bool
        )
    except (ValueError, OverflowError):
        # OverflowError: a whole number beyond int64, which float still reads.
        if integers:
            return to_floats(tokens)
    floats = np.full(count, np.nan)
    ok = np.zeros(count, dtype=bool)
    for index, token in enumerate(tokens):
        try:
            floats[index] = float(token)
            ok[index] = True
        except ValueError:
            continue
    return floats, ok


def _convert(
    parsed: ParsedPoints,
    paths: list[bytes],
    value_tokens: list[bytes],
    stamp_tokens: list[bytes],
    now_s: float,
) -> ParsedPoints:
    if not paths:
        return parsed
    values, values_ok = to_floats(value_tokens)
    stamps, stamps_ok = to_floats(stamp_tokens, integers=True)
    stamps[stamps == -1.0] = now_s
    finite = np.isfinite(values)
    stamps_valid = stamps_ok & np.isfinite(stamps) & (stamps > 0) & (stamps < 2**33)
    keep = values_ok & finite & stamps_valid
    if not keep.all():
        _count_bad(parsed, value_tokens, stamp_tokens, values_ok, finite, stamps_valid)
        index = np.flatnonzero(keep)
        paths = [paths[i] for i in index.tolist()]
        values = values[index]
        stamps = stamps[index]
    parsed.paths = paths
    parsed.values = values
    # Carbon truncates fractional timestamps to whole seconds.
    parsed.timestamps_ms = stamps.astype(np.int64) * 1000
    return parsed


def _count_bad(
    parsed: ParsedPoints,
    value_tokens: list[bytes],
    stamp_tokens: list[bytes],
    values_ok: npt.NDArray[np.bool_],
    finite: npt.NDArray[np.bool_],
    stamps_valid: npt.NDArray[np.bool_],
) -> None:
    for reason, bad, tokens in (
        (INVALID_VALUE, ~values_ok, value_tokens),
        (NON_FINITE_VALUE, values_ok & ~finite, value_tokens),
        (INVALID_TIMESTAMP, values_ok & finite & ~stamps_valid, stamp_tokens),
    ):
        where = np.flatnonzero(bad)
        if where.size:
            parsed.reject(reason, tokens[int(where[0])], int(where.size))
