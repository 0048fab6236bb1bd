"""Readers of the IQRF daemon's recorded example messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.gateway.iqrf.conftest import DAEMON_EXAMPLES, DPA_EXAMPLES


def read_documents(path: Path) -> list[dict[str, Any]]:
    """Parse a file of one or more JSON documents, skipping `#` comment lines."""
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.startswith("#")
    )
    decoder = json.JSONDecoder()
    documents: list[dict[str, Any]] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        value, position = decoder.raw_decode(text, position)
        documents.extend(value if isinstance(value, list) else [value])
    return documents


def response_examples() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (file name, document) of every recorded response with raw bytes."""
    files = sorted(DAEMON_EXAMPLES.glob("*response*.json"))
    files += sorted(
        (DPA_EXAMPLES / "daemon_session_frc_sleep").glob("*/*response.json")
    )
    for path in files:
        for document in read_documents(path):
            if document.get("data", {}).get("raw"):
                yield path.name, document


def raw_entries(document: dict[str, Any]) -> list[dict[str, str]]:
    """Return the raw request/response entries of a response document."""
    raw = document["data"]["raw"]
    return raw if isinstance(raw, list) else [raw]


def raw_pairs() -> list[dict[str, Any]]:
    """Return every recorded request/response pair, flattened."""
    pairs: list[dict[str, Any]] = json.loads(
        (DPA_EXAMPLES / "daemon_raw_dpa_pairs.json").read_text()
    )
    return pairs
