"""Durability of the DuckDB store's staged rows: crashes, torn logs, old files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np

from citymesh.storage.duckdb_staging import log_directory, sort_unique
from citymesh.storage.duckdb_store import DuckDBStore
from tests.storage.test_duckdb_store import MINUTE_MS, append, drain, meta

NAME = "t.s.g.a.x"


def run_and_crash(path: Path, body: str) -> None:
    """Run `body` with `store` open on `path` in a child process killed at its end.

    os._exit skips every close and flush, as a SIGKILL would.
    """
    code = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from citymesh.storage.duckdb_store import DuckDBStore
        from tests.storage.test_duckdb_store import append, drain
        store = DuckDBStore(Path({str(path)!r}))
        """
    )
    code += textwrap.dedent(body) + "\nos._exit(0)\n"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def stored(store: DuckDBStore) -> dict[int, float]:
    data = store.read([NAME], 0, 10**6 * MINUTE_MS)[0]
    minutes = (data.timestamps // MINUTE_MS).tolist()
    return dict(zip(minutes, data.values.tolist(), strict=True))


def segments(path: Path) -> list[Path]:
    return sorted(log_directory(path).glob("*.log"))


def test_crash_before_compaction_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    run_and_crash(
        path,
        f"""
        append(store, {NAME!r}, [1, 2], [1.0, 2.0])
        append(store, {NAME!r}, [2, 3], [20.0, 3.0])
        """,
    )
    store = DuckDBStore(path)
    assert stored(store) == {1: 1.0, 2: 20.0, 3: 3.0}
    drain(store, 10)
    assert stored(store) == {1: 1.0, 2: 20.0, 3: 3.0}
    store.close()


def test_crash_after_compaction_commit_moves_once(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    # The child dies after compaction committed but before it deleted the
    # staged rows and the log, so the log still contains the compacted rows.
    run_and_crash(
        path,
        f"""
        append(store, {NAME!r}, [1, 2, 3], [1.0, 2.0, 3.0])
        store._staging.release = lambda max_seq: os._exit(0)
        store.compact()
        """,
    )
    assert segments(path)
    store = DuckDBStore(path)
    assert not store._ingest_pending()
    assert store.count_points() == 3
    assert stored(store) == {1: 1.0, 2: 2.0, 3: 3.0}
    # A later write after the skipped rows must still win over them.
    append(store, NAME, [2], [200.0])
    drain(store, 10)
    assert stored(store) == {1: 1.0, 2: 200.0, 3: 3.0}
    store.close()


def test_crash_after_partial_compaction_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    run_and_crash(
        path,
        f"""
        append(store, {NAME!r}, [1, 2], [1.0, 2.0])
        store.compact()
        append(store, {NAME!r}, [3, 4], [3.0, 4.0])
        """,
    )
    store = DuckDBStore(path)
    assert store._ingest_pending()
    assert stored(store) == {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}
    store.close()


def test_torn_log_tail_truncated(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    run_and_crash(path, f"append(store, {NAME!r}, [1, 2], [1.0, 2.0])")
    (segment,) = segments(path)
    size = segment.stat().st_size
    # Half of a second record, as a crash during its write leaves it.
    with segment.open("ab") as file:
        file.write(segment.read_bytes()[: size // 2])
    store = DuckDBStore(path)
    assert stored(store) == {1: 1.0, 2: 2.0}
    assert segment.stat().st_size == size
    append(store, NAME, [3], [3.0])
    store.close()
    reopened = DuckDBStore(path)
    assert stored(reopened) == {1: 1.0, 2: 2.0, 3: 3.0}
    reopened.close()


def test_close_compacts_and_removes_log(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    append(store, NAME, [1, 2], [1.0, 2.0])
    assert segments(path)
    store.close()
    assert not segments(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM points").fetchall() == [(2,)]
    finally:
        con.close()


def test_version_two_file_migrated(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    append(store, NAME, [1, 2], [1.0, 2.0])
    drain(store, 10)
    store.close()
    # Rebuild the layout of schema version 2: staged rows in a table of the
    # file itself, with no log and no compacted seq in the state table.
    con = duckdb.connect(str(path))
    con.execute("DROP VIEW ingest")
    con.execute(
        "CREATE TABLE ingest (series_id INTEGER NOT NULL, ts BIGINT NOT NULL,"
        " value DOUBLE NOT NULL, seq BIGINT NOT NULL)"
    )
    con.execute(
        "INSERT INTO ingest VALUES (1, ?, 20.0, 7), (1, ?, 3.0, 8), (1, ?, 30.0, 9)",
        [2 * MINUTE_MS, 3 * MINUTE_MS, 3 * MINUTE_MS],
    )
    con.execute("DELETE FROM state WHERE key <> 'schema.version'")
    con.execute("UPDATE state SET value = '2'")
    con.close()

    migrated = DuckDBStore(path)
    assert stored(migrated) == {1: 1.0, 2: 20.0, 3: 30.0}
    migrated.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables"
            " WHERE table_name = 'ingest'"
        ).fetchall()
    finally:
        con.close()
    assert kind == [("VIEW",)]
    reopened = DuckDBStore(path)
    assert stored(reopened) == {1: 1.0, 2: 20.0, 3: 30.0}
    assert reopened.series([NAME])[0] == meta(NAME)
    reopened.close()


def test_sort_unique_last_write_wins() -> None:
    sids = np.array([2, 1, 2, 1, 2], np.int32)
    stamps = np.array([5, 1, 5, 2, 4], np.int64)
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    seqs = np.arange(1, 6, dtype=np.int64)
    chunk = sort_unique(sids, stamps, values, seqs)
    assert chunk["series_id"].tolist() == [1, 1, 2, 2]
    assert chunk["ts"].tolist() == [1, 2, 4, 5]
    assert chunk["value"].tolist() == [2.0, 4.0, 5.0, 3.0]


def test_sort_unique_ordered_runs_kept() -> None:
    sids = np.array([2, 1, 2, 1], np.int32)
    stamps = np.array([1, 1, 2, 2], np.int64)
    values = np.array([1.0, 2.0, 3.0, 4.0])
    chunk = sort_unique(sids, stamps, values, np.arange(1, 5, dtype=np.int64))
    assert chunk["series_id"].tolist() == [1, 1, 2, 2]
    assert chunk["ts"].tolist() == [1, 2, 1, 2]
    assert chunk["value"].tolist() == [2.0, 4.0, 1.0, 3.0]
