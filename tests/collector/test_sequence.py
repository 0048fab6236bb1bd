"""Sequence trackers survive a restart through the store's state table."""

from __future__ import annotations

from citymesh.collector.sequence import STATE_KEY, SequenceStates
from citymesh.storage.duckdb_store import DuckDBStore

GW1 = ("t1", "gw-1")
GW2 = ("t1", "gw-2")


def _accept(states: SequenceStates, key: tuple[str, str], *seqs: int) -> None:
    for seq in seqs:
        states.tracker(key).accept(seq)


def test_sequence_states_restored_after_restart() -> None:
    store = DuckDBStore(None)
    states = SequenceStates(store)
    _accept(states, GW1, 0, 3)
    _accept(states, GW2, 5)
    store.set_state(states.stored([(GW1, 0), (GW1, 3), (GW2, 5)]))

    restarted = SequenceStates(store)
    again = restarted.tracker(GW1)
    assert again.highest == 3
    assert again.gaps == {1, 2}
    assert again.is_duplicate(3)
    assert again.is_duplicate(0)
    assert not again.is_duplicate(1)
    assert restarted.tracker(GW2).highest == 5
    assert restarted.tracker(("t1", "gw-3")).highest == -1


def test_sequence_states_persist_only_stored_batches() -> None:
    store = DuckDBStore(None)
    states = SequenceStates(store)
    # Batches 0-2 are accepted, but only 0 and 1 are stored before a crash.
    _accept(states, GW1, 0, 1, 2)
    assert states.tracker(GW1).is_duplicate(2)
    store.set_state(states.stored([(GW1, 0), (GW1, 1)]))

    restarted = SequenceStates(store)
    assert restarted.tracker(GW1).is_duplicate(1)
    assert not restarted.tracker(GW1).is_duplicate(2)


def test_sequence_states_keep_gateways_not_heard_from() -> None:
    store = DuckDBStore(None)
    states = SequenceStates(store)
    _accept(states, GW1, 4)
    _accept(states, GW2, 9)
    store.set_state(states.stored([(GW1, 4), (GW2, 9)]))

    # Only gw-1 sends after the restart; gw-2's state must stay stored.
    restarted = SequenceStates(store)
    _accept(restarted, GW1, 5)
    store.set_state(restarted.stored([(GW1, 5)]))

    third = SequenceStates(store)
    assert third.tracker(GW1).highest == 5
    assert third.tracker(GW2).highest == 9


def test_sequence_states_unreadable_start_afresh() -> None:
    store = DuckDBStore(None)
    store.set_state({STATE_KEY: "{not json"})
    states = SequenceStates(store)
    assert states.tracker(GW1).highest == -1
    store.set_state({STATE_KEY: '{"t1/gw-1": {"highest": "x", "gaps": []}}'})
    assert SequenceStates(store).tracker(GW1).highest == -1


def test_sequence_states_read_legacy_keys() -> None:
    store = DuckDBStore(None)
    store.set_state({"sequence/t1/gw-1": '{"highest": 7, "gaps": [4]}'})

    tracker = SequenceStates(store).tracker(GW1)

    assert tracker.highest == 7
    assert tracker.is_duplicate(7)
    assert not tracker.is_duplicate(4)
    assert not tracker.is_duplicate(8)
