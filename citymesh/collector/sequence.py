"""Per-gateway sequence tracking: duplicates are recognised, gaps are counted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from citymesh.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)

# Missing sequence numbers remembered per gateway; older ones are forgotten
# (and a late batch for them is then accepted, relying on idempotent storage).
MAX_REMEMBERED_GAPS = 10_000


@dataclass(slots=True)
class SequenceTracker:
    """The highest sequence number seen from one gateway and the holes below it."""

    highest: int = -1
    gaps: set[int] = field(default_factory=set)

    def is_duplicate(self, seq: int) -> bool:
        """Tell whether `seq` was already accepted."""
        if seq > self.highest:
            return False
        if seq in self.gaps:
            return False
        lowest_remembered = self.highest - MAX_REMEMBERED_GAPS
        return seq > lowest_remembered

    def accept(self, seq: int) -> int:
        """Record `seq` as accepted and return how many numbers it skipped."""
        if seq <= self.highest:
            self.gaps.discard(seq)
            return 0
        skipped = seq - self.highest - 1 if self.highest >= 0 else 0
        if skipped:
            start = max(self.highest + 1, seq - MAX_REMEMBERED_GAPS)
            self.gaps.update(range(start, seq))
        self.highest = seq
        if len(self.gaps) > MAX_REMEMBERED_GAPS:
            floor = self.highest - MAX_REMEMBERED_GAPS
            self.gaps = {g for g in self.gaps if g > floor}
        return skipped

    def dumps(self) -> str:
        """Serialise for the store's state table."""
        return json.dumps({"highest": self.highest, "gaps": sorted(self.gaps)})

    @classmethod
    def loads(cls, text: str) -> SequenceTracker:
        """Restore from `dumps` output."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SequenceTracker:
        """Restore from the object that `dumps` serialises."""
        highest = data["highest"]
        gaps = data["gaps"]
        if not isinstance(highest, int) or not isinstance(gaps, list):
            raise ValueError(f"invalid sequence state {data!r:.200}")
        return cls(highest=highest, gaps={int(g) for g in gaps})


# One state key contains the trackers of every gateway, because the store's
# upsert cost about 1.4 ms per key (DuckDBStore.set_state, DuckDB 2.0.1, 2-core
# x86_64) and a write touches the sequences of dozens of gateways.
STATE_KEY = "sequence"
# Earlier versions kept one state key per gateway under this prefix.
LEGACY_PREFIX = "sequence/"


def _gateway_name(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1]}"


class SequenceStates:
    """The trackers of every gateway, persisted together under `STATE_KEY`.

    Each gateway has two trackers. The live one, used by the event loop,
    counts a batch once it is accepted, so a redelivery of a queued batch
    is a duplicate. The stored one, used by the writer, counts a batch
    once its points are stored, and only it is persisted. A batch accepted
    but not stored when the process dies comes back from the broker, and
    it must then not be taken for a duplicate.

    A gateway missing from the shared state is looked up under the key
    `sequence/<tenant>/<gateway>` that earlier versions wrote per gateway,
    so an upgrade keeps each gateway's duplicate detection.
    """

    def __init__(self, store: TimeSeriesStore) -> None:
        self._store = store
        self._live: dict[tuple[str, str], SequenceTracker] = {}
        self._stored: dict[tuple[str, str], SequenceTracker] = {}
        # Serialised stored tracker per gateway name, including gateways
        # restored but not heard from since, so that a write keeps them.
        self._encoded: dict[str, str] | None = None
        self._saved: dict[str, object] = {}

    def tracker(self, key: tuple[str, str]) -> SequenceTracker:
        """Return the live tracker of gateway `key` (tenant, gateway)."""
        tracker = self._live.get(key)
        if tracker is None:
            self._load()
            name = _gateway_name(key)
            saved = self._saved.pop(name, None)
            if saved is None:
                saved = self._legacy(key)
            self._stored[key] = _restore(name, saved)
            tracker = _restore(name, saved)
            self._live[key] = tracker
        return tracker

    def _legacy(self, key: tuple[str, str]) -> object:
        text = self._store.get_state(f"{LEGACY_PREFIX}{key[0]}/{key[1]}")
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    def _load(self) -> dict[str, str]:
        if self._encoded is None:
            self._encoded = {}
            text = self._store.get_state(STATE_KEY)
            if text:
                try:
                    saved = json.loads(text)
                    if not isinstance(saved, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    logger.error(
                        "stored sequence state is unreadable (%s); duplicate "
                        "detection starts afresh, and the idempotent store keeps "
                        "redelivered readings once",
                        exc,
                    )
                    saved = {}
                self._saved = saved
                self._encoded = {name: json.dumps(v) for name, v in saved.items()}
        return self._encoded

    def stored(self, batches: Iterable[tuple[tuple[str, str], int]]) -> dict[str, str]:
        """Count (gateway key, seq) batches as stored; return the state to write.

        Call it from one thread at a time, in the order the batches were
        accepted, and only for keys that `tracker` has seen.
        """
        encoded = self._load()
        changed = set()
        for key, seq in batches:
            self._stored[key].accept(seq)
            changed.add(key)
        for key in changed:
            encoded[_gateway_name(key)] = self._stored[key].dumps()
        body = ",".join(f"{json.dumps(name)}:{text}" for name, text in encoded.items())
        return {STATE_KEY: "{" + body + "}"}


def _restore(name: str, saved: object) -> SequenceTracker:
    if isinstance(saved, dict):
        try:
            return SequenceTracker.from_dict(saved)
        except (KeyError, ValueError, TypeError) as exc:
            logger.error("sequence state of gateway %s is unreadable: %s", name, exc)
    return SequenceTracker()
