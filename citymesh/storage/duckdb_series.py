"""The DuckDB store's series table, cached in memory, with each series' retention."""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterator, Sequence

import duckdb
import numpy as np
import numpy.typing as npt

from citymesh.storage.base import SeriesMeta
from citymesh.storage.retention import RetentionRules, SeriesPolicy

logger = logging.getLogger(__name__)

IdArray = npt.NDArray[np.int32]

_COLUMNS = ("id", "name", "tenant", "site", "gateway", "device", "quantity", "unit")


class SeriesCatalog:
    """Series metadata by name and id, and which rollups each series has complete.

    Changes go through the store, which holds its write lock and a transaction.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, rules: RetentionRules) -> None:
        self._con = con
        self.rules = rules
        self._by_name: dict[str, tuple[int, SeriesMeta]] = {}
        self._by_id: dict[int, SeriesMeta] = {}
        self._policy: dict[int, SeriesPolicy] = {}
        self._done: dict[int, set[int]] = {}
        # Names and metadata sorted by name, rebuilt after a change, so a
        # prefix lookup is a binary search instead of a scan of every series.
        self._sorted: tuple[list[str], list[SeriesMeta]] | None = None
        self.reload()

    def __len__(self) -> int:
        return len(self._by_id)

    def reload(self) -> None:
        """Read the series and rollup-completion tables again."""
        self._sorted = None
        self._by_name.clear()
        self._by_id.clear()
        self._policy.clear()
        self._done.clear()
        rows = self._con.execute(
            f"SELECT {', '.join(_COLUMNS)}, step_s, tags FROM series"
        ).fetchall()
        for row in rows:
            meta = SeriesMeta(
                name=row[1],
                tenant=row[2],
                site=row[3],
                gateway=row[4],
                device=row[5],
                quantity=row[6],
                unit=row[7],
                step_s=row[8],
                tags=json.loads(row[9]),
            )
            self._add(row[0], meta)
        for series_id, step_s in self._con.execute(
            "SELECT series_id, step_s FROM rollup_done"
        ).fetchall():
            self._done.setdefault(series_id, set()).add(step_s)

    def _add(self, series_id: int, meta: SeriesMeta) -> None:
        self._sorted = None
        self._by_name[meta.name] = (series_id, meta)
        self._by_id[series_id] = meta
        self._policy[series_id] = self.rules.policy(meta.name)

    def register(self, metas: Sequence[SeriesMeta]) -> IdArray:
        """Return the id of each series, inserting new ones and updating changed ones.

        A new series has no data, so every rollup of its policy counts as complete.
        """
        ids = np.empty(len(metas), dtype=np.int32)
        fresh: dict[str, int] = {}
        new_rows: list[tuple[object, ...]] = []
        done_rows: list[tuple[int, int]] = []
        next_id = len(self._by_id) + 1
        for index, meta in enumerate(metas):
            known = self._by_name.get(meta.name)
            if known is not None:
                series_id, old = known
                if old != meta:
                    self._update(series_id, meta)
                ids[index] = series_id
                continue
            series_id = fresh.get(meta.name, 0)
            if not series_id:
                series_id = next_id
                next_id += 1
                fresh[meta.name] = series_id
                new_rows.append(_row(series_id, meta))
                self._add(series_id, meta)
                steps = {a.step_s for a in self._policy[series_id].archives[1:]}
                self._done[series_id] = steps
                done_rows.extend((series_id, step) for step in steps)
            ids[index] = series_id
        if new_rows:
            _insert_rows(self._con, "series", new_rows, 10)
            logger.debug("registered %d new series", len(new_rows))
        if done_rows:
            _insert_rows(self._con, "rollup_done", done_rows, 2)
        return ids

    def _update(self, series_id: int, meta: SeriesMeta) -> None:
        tags = json.dumps(dict(meta.tags), sort_keys=True)
        self._con.execute(
            "UPDATE series SET unit = ?, step_s = ?, tags = ? WHERE id = ?",
            [meta.unit, meta.step_s, tags, series_id],
        )
        self._by_name[meta.name] = (series_id, meta)
        self._by_id[series_id] = meta
        self._sorted = None

    def lookup(
        self, names: Sequence[str], unique: bool = True
    ) -> list[tuple[int, SeriesMeta]]:
        """Return (id, meta) of the known names, in order, once each if `unique`."""
        wanted = dict.fromkeys(names) if unique else names
        return [self._by_name[n] for n in wanted if n in self._by_name]

    def metas(self) -> Iterator[SeriesMeta]:
        """Iterate over the metadata of every series."""
        return iter(self._by_id.values())

    def with_prefix(self, prefix: str) -> list[SeriesMeta]:
        """Return the metadata of the series whose names start with `prefix`, sorted."""
        if self._sorted is None:
            metas = sorted(self._by_id.values(), key=lambda m: m.name)
            self._sorted = ([meta.name for meta in metas], metas)
        names, metas = self._sorted
        low = bisect.bisect_left(names, prefix)
        high = low
        while high < len(names) and names[high].startswith(prefix):
            high += 1
        return metas[low:high]

    def by_id(self, series_id: int) -> SeriesMeta | None:
        """Return the metadata of a series id, or None."""
        return self._by_id.get(series_id)

    def group_by_policy(self, series_ids: IdArray) -> dict[SeriesPolicy, IdArray]:
        """Group series ids by their retention policy."""
        groups: dict[SeriesPolicy, list[int]] = {}
        for series_id in series_ids.tolist():
            groups.setdefault(self._policy[series_id], []).append(series_id)
        return {p: np.array(ids, dtype=np.int32) for p, ids in groups.items()}

    def missing_rollups(self, limit: int) -> list[tuple[SeriesPolicy, int, IdArray]]:
        """Return up to `limit` series whose current rollups are not complete.

        Each item is (policy, step, ids), ordered so finer steps come first.
        """
        pending: dict[tuple[SeriesPolicy, int], list[int]] = {}
        taken: set[int] = set()
        for series_id, policy in self._policy.items():
            done = self._done.get(series_id, set())
            for archive in policy.archives[1:]:
                if archive.step_s not in done:
                    pending.setdefault((policy, archive.step_s), []).append(series_id)
                    taken.add(series_id)
            if len(taken) >= limit:
                break
        return [
            (policy, step, np.array(ids, dtype=np.int32))
            for (policy, step), ids in sorted(pending.items(), key=lambda i: i[0][1])
        ]

    def mark_done(self, series_ids: IdArray, step_s: int) -> None:
        """Record that the rollup of step_s is complete for these series."""
        rows = [(series_id, step_s) for series_id in series_ids.tolist()]
        _insert_rows(self._con, "rollup_done", rows, 2)
        for series_id in series_ids.tolist():
            self._done.setdefault(series_id, set()).add(step_s)

    def expiry_plan(
        self, now_ms: int, stored_steps: set[int]
    ) -> tuple[dict[int, IdArray], dict[tuple[int, int], IdArray]]:
        """Return the raw and rollup cutoffs (ms) of every series with a retention.

        Raw points of a series expire only once all its current rollups are
        complete. A rollup step no longer in a series' rule is kept as long as
        the rule's longest retention, so a rule change loses no history early.
        """
        raw: dict[int, list[int]] = {}
        rollups: dict[tuple[int, int], list[int]] = {}
        for series_id, policy in self._policy.items():
            archives = policy.archives
            if not archives:
                continue
            steps = {archive.step_s for archive in archives[1:]}
            if steps <= self._done.get(series_id, set()):
                raw.setdefault(now_ms - archives[0].retention_s * 1000, []).append(
                    series_id
                )
            longest = max(archive.retention_s for archive in archives)
            for step in stored_steps:
                kept = next(
                    (a.retention_s for a in archives[1:] if a.step_s == step), longest
                )
                rollups.setdefault((step, now_ms - kept * 1000), []).append(series_id)
        return (
            {cutoff: np.array(ids, np.int32) for cutoff, ids in raw.items()},
            {key: np.array(ids, np.int32) for key, ids in rollups.items()},
        )


def _row(series_id: int, meta: SeriesMeta) -> tuple[object, ...]:
    return (
        series_id,
        meta.name,
        meta.tenant,
        meta.site,
        meta.gateway,
        meta.device,
        meta.quantity,
        meta.unit,
        meta.step_s,
        json.dumps(dict(meta.tags), sort_keys=True),
    )


def _insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: Sequence[tuple[object, ...]],
    width: int,
) -> None:
    """Insert many rows with one statement; executemany costs a round trip per row."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * width
    relation = {f"c{i}": np.array(column) for i, column in enumerate(columns)}
    con.register("citymesh_rows", relation)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM citymesh_rows")
    finally:
        con.unregister("citymesh_rows")
