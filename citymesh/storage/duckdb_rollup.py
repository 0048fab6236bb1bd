"""Compaction, rollups and expiry on the DuckDB store's tables.

Every function runs inside a transaction the caller opened and holds the
store's write lock for. Timestamps in the tables are milliseconds, and a
rollup row's `ts` is the start of its bucket.

A rollup bucket of step S is aggregated from the archive before it, as
whisper propagates: from the raw points placed in slots of the first
archive's step (the latest point of a slot wins), or from the rollup of the
previous step. It gets a value when at least xFilesFactor of its slots hold
one. A bucket below the factor keeps the value it had, as in whisper.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from citymesh.storage.retention import SeriesPolicy

logger = logging.getLogger(__name__)

IdArray = npt.NDArray[np.int32]

_AGGREGATE = {
    "average": "avg(value)",
    "sum": "sum(value)",
    "min": "min(value)",
    "max": "max(value)",
    "last": "arg_max(value, slot)",
}


def _slots_sql(source_step_s: int, where: str, join: str = "") -> str:
    """Select (series_id, slot, value) of one archive: raw points or a rollup.

    A negative `source_step_s` selects raw points placed in slots of that
    many seconds. `where` and `join` refer to the source table as `p`.
    """
    if source_step_s < 0:
        slot_ms = -source_step_s * 1000
        return (
            f"SELECT p.series_id, p.ts // {slot_ms} * {slot_ms} AS slot,"
            f" arg_max(p.value, p.ts) AS value FROM points p {join} WHERE {where}"
            " GROUP BY ALL"
        )
    return (
        f"SELECT p.series_id, p.ts AS slot, p.value FROM rollups p {join}"
        f" WHERE p.step_s = {source_step_s} AND {where}"
    )


def _aggregate_sql(
    slots_sql: str, step_s: int, ratio: int, policy: SeriesPolicy
) -> str:
    """Aggregate slots into buckets of step_s, keeping those meeting xFilesFactor."""
    step_ms = step_s * 1000
    return (
        f"SELECT series_id, slot // {step_ms} * {step_ms} AS ts,"
        f" {_AGGREGATE[policy.method]} AS value FROM ({slots_sql})"
        f" GROUP BY ALL"
        f" HAVING count(value)::DOUBLE / {ratio} >= {policy.x_files_factor!r}"
    )


def _source_steps(policy: SeriesPolicy) -> list[tuple[int, int, int]]:
    """Return (source step, step, ratio) per rollup; a raw source step is negative."""
    archives = policy.archives
    steps = []
    for index in range(1, len(archives)):
        finer = archives[index - 1].step_s
        source = -finer if index == 1 else finer
        steps.append((source, archives[index].step_s, archives[index].step_s // finer))
    return steps


def _upsert(con: duckdb.DuckDBPyConnection, step_s: int) -> int:
    """Replace rollup rows of step_s by the rows of the temporary table `fresh`."""
    row = con.execute("SELECT min(ts), max(ts), count(*) FROM fresh").fetchall()[0]
    if row is None or not row[2]:
        return 0
    low, high, count = row
    con.execute(
        "DELETE FROM rollups USING fresh WHERE rollups.step_s = ?"
        " AND rollups.series_id = fresh.series_id AND rollups.ts = fresh.ts"
        " AND rollups.ts BETWEEN ? AND ?",
        [step_s, low, high],
    )
    con.execute(
        f"INSERT INTO rollups SELECT series_id, {step_s}, ts, value FROM fresh"
        " ORDER BY series_id, ts"
    )
    return int(count)


def refresh_rollups(
    con: duckdb.DuckDBPyConnection, policy: SeriesPolicy, series_ids: IdArray
) -> int:
    """Recompute every rollup bucket that the rows of the temporary table `chunk` touch.

    `series_ids` are the series of the chunk that follow `policy`.
    """
    if len(policy.archives) < 2 or series_ids.size == 0:
        return 0
    con.register("policy_series", {"series_id": series_ids})
    con.execute(
        "CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT series_id, ts"
        " FROM chunk WHERE series_id IN (SELECT series_id FROM policy_series)"
    )
    con.unregister("policy_series")
    written = 0
    for source, step_s, ratio in _source_steps(policy):
        step_ms = step_s * 1000
        con.execute(
            "CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT series_id,"
            f" ts // {step_ms} * {step_ms} AS ts FROM touched"
        )
        row = con.execute("SELECT min(ts), max(ts) FROM touched").fetchall()[0]
        assert row is not None
        low, high = int(row[0]), int(row[1]) + step_ms
        join = (
            "JOIN touched t ON p.series_id = t.series_id"
            f" AND p.ts // {step_ms} * {step_ms} = t.ts"
        )
        slots = _slots_sql(source, f"p.ts >= {low} AND p.ts < {high}", join)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE fresh AS "
            + _aggregate_sql(slots, step_s, ratio, policy)
        )
        written += _upsert(con, step_s)
    con.execute("DROP TABLE IF EXISTS touched")
    con.execute("DROP TABLE IF EXISTS fresh")
    return written


def backfill_rollup(
    con: duckdb.DuckDBPyConnection,
    policy: SeriesPolicy,
    step_s: int,
    series_ids: IdArray,
    existing_steps: Iterable[int],
) -> int:
    """Fill the buckets of one rollup step that hold no value yet, from all data kept.

    The source is the archive before it. Where that has no data (raw points
    expired under an earlier rule), any other stored rollup whose step divides
    `step_s` fills the rest, finest first, so a rule change keeps history.
    """
    index = [archive.step_s for archive in policy.archives].index(step_s)
    finer = policy.archives[index - 1].step_s
    primary = -finer if index == 1 else finer
    sources = [(primary, step_s // finer)]
    for other in sorted(existing_steps):
        if other < step_s and step_s % other == 0 and other != primary:
            sources.append((other, step_s // other))
    con.register("policy_series", {"series_id": series_ids})
    where = "p.series_id IN (SELECT series_id FROM policy_series)"
    written = 0
    for source, ratio in sources:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE fresh AS SELECT * FROM ("
            + _aggregate_sql(_slots_sql(source, where), step_s, ratio, policy)
            + ") AS f WHERE NOT EXISTS (SELECT 1 FROM rollups r WHERE"
            f" r.step_s = {step_s} AND r.series_id = f.series_id AND r.ts = f.ts)"
        )
        written += _upsert(con, step_s)
    con.unregister("policy_series")
    con.execute("DROP TABLE IF EXISTS fresh")
    return written


def compact_ingest(
    con: duckdb.DuckDBPyConnection,
    chunk: Mapping[str, npt.NDArray[Any]],
    policies: Mapping[SeriesPolicy, IdArray],
) -> int:
    """Write compacted rows into points, replacing stored points of equal timestamps.

    `chunk` holds the columns series_id, ts and value, sorted by series and
    time with one row per (series, timestamp). `policies` groups the series
    ids of those rows by policy, so each rollup they touch is recomputed.
    Returns the number of rows written.
    """
    moved = len(chunk["series_id"])
    if not moved:
        return 0
    con.register("citymesh_chunk", chunk)
    try:
        # The scan of a registered array keeps its row order, so the table,
        # and points after it, stay sorted without an ORDER BY.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE chunk AS SELECT * FROM citymesh_chunk"
        )
    finally:
        con.unregister("citymesh_chunk")
    low, high = int(chunk["ts"].min()), int(chunk["ts"].max())
    con.execute(
        "DELETE FROM points USING chunk WHERE points.series_id = chunk.series_id"
        " AND points.ts = chunk.ts AND points.ts BETWEEN ? AND ?",
        [low, high],
    ).fetchall()
    con.execute("INSERT INTO points SELECT series_id, ts, value FROM chunk")
    con.execute(
        """
        INSERT INTO latest
        SELECT series_id, max(ts), arg_max(value, ts) FROM chunk GROUP BY series_id
        ON CONFLICT (series_id) DO UPDATE
        SET ts = excluded.ts, value = excluded.value
        WHERE excluded.ts >= latest.ts
        """
    )
    for policy, series_ids in policies.items():
        refresh_rollups(con, policy, series_ids)
    con.execute("DROP TABLE IF EXISTS chunk")
    return moved


def expire(
    con: duckdb.DuckDBPyConnection,
    raw_cutoffs: Mapping[int, IdArray],
    rollup_cutoffs: Mapping[tuple[int, int], IdArray],
) -> int:
    """Delete raw points and rollup rows older than their cutoffs (ms).

    `raw_cutoffs` maps a cutoff to the series it applies to, `rollup_cutoffs`
    maps (step, cutoff) to series. Returns the number of rows deleted.
    """
    deleted = 0
    for cutoff, series_ids in raw_cutoffs.items():
        con.register("expiring", {"series_id": series_ids})
        row = con.execute(
            "DELETE FROM points WHERE ts < ?"
            " AND series_id IN (SELECT series_id FROM expiring)",
            [cutoff],
        ).fetchall()[0]
        deleted += int(row[0]) if row else 0
        con.unregister("expiring")
    for (step_s, cutoff), series_ids in rollup_cutoffs.items():
        con.register("expiring", {"series_id": series_ids})
        row = con.execute(
            "DELETE FROM rollups WHERE step_s = ? AND ts < ?"
            " AND series_id IN (SELECT series_id FROM expiring)",
            [step_s, cutoff],
        ).fetchall()[0]
        deleted += int(row[0]) if row else 0
        con.unregister("expiring")
    return deleted
