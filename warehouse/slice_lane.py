"""Slices cut on cursors of their own while a build session runs: the session's other lane.

A slice of a raw view reads only what the session does not write (landing files, and ``events``
as the load committed it); a slice of a partitioned model whose inputs are raw views, other such
models and committed tables without partition reads only those. None needs the session's
transaction, so a :class:`SliceLane` computes them in threads of its own (one for the raw views,
``MODEL_WORKERS`` for the models), in the order the session builds them, and hands each over as
an Arrow table that the session's cursor scans in place (``register``): the session is left to
delete and insert, and to rebuild the tables without partition. A refresh otherwise uses about
one of two cores (DuckDB's fixed cost per statement dominates small slices).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

import duckdb
import pyarrow as pa

from vtforge.warehouse.load import IngestedFile, columns_of, ingested_files, raw_select
from vtforge.warehouse.models import MODELS_BY_NAME, carry, levers_of

MODEL_WORKERS = 2  # model slices cut at once: the chain of models is narrower than the plan


def raw_slice_sql(
    con: duckdb.DuckDBPyConnection,
    db: str,
    view: str,
    *,
    since: datetime | None,
    fresh: bool,
    ingested: dict[str, IngestedFile],
) -> tuple[str, dict[str, object]]:
    """A ``SELECT`` of the affected tasks' (``temp._affected``) rows of raw view ``view``, read from
    just the landing files that hold them (``events`` says which, and which rows are kept): the new
    files alone when the affected tasks have no older rows of this type (``fresh``: none at all),
    as when new events are new tasks' events; and then, when those files kept every row (no copy
    was dropped as a duplicate), each file whole, without looking up its rows in ``events``."""
    event_type = view.removeprefix("raw_")
    events = f"{db}.main.events"
    params: dict[str, object] = {"type": event_type}
    where = "event_type = $type AND coalesce(task_id, '') IN (SELECT k FROM temp._affected)"
    if since is not None:
        params["since"] = since
        older = f"SELECT 1 FROM {events} WHERE {where} AND _ingested_at <= $since LIMIT 1"
        if fresh or not con.execute(older, params).fetchall():
            new = sorted(
                (f for f in ingested.values() if f.event_type == event_type and _after(f, since)),
                key=lambda f: f.path,
            )
            if all(f.whole for f in new):  # every row of the new files is a new row of the view
                present, uniform = columns_of(new)
                paths = [f.path for f in new]
                return raw_select(con, event_type, paths, present=present, uniform=uniform), {}
            where = "event_type = $type AND _ingested_at > $since"
        else:
            del params["since"]
    holding = f"SELECT DISTINCT _file FROM {events} WHERE {where} ORDER BY 1"
    files = [row[0] for row in con.execute(holding, params).fetchall()]
    present, uniform = columns_of(ingested[f] for f in files if f in ingested)
    select = raw_select(con, event_type, files, present=present, uniform=uniform)
    rows = (
        f"SELECT r.* FROM ({select}) r SEMI JOIN (SELECT _file, _row FROM {events} WHERE {where}) e "
        "ON e._file = r._file AND e._row = r._row"
    )
    return rows, params


def _after(file: IngestedFile, since: datetime) -> bool:
    return file.ingested_at is not None and file.ingested_at > since


class SliceLane:
    """Cuts the slices of ``slices`` (raw views, and models that read only raw views, models
    before them in the list and tables without partition) in the background, in that order: the
    raw views' on one cursor and thread, the models' by ``MODEL_WORKERS`` threads with a cursor each
    (a model waits for the slices it reads).

    ``affected_sql`` (with ``params``) selects the session's affected task keys (column ``k``) from
    committed tables, as the session itself did. :meth:`close` before the session commits: the
    session's commit checkpoints only when no other transaction is open."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        db: str,
        slices: list[str],
        *,
        affected_sql: str,
        params: Mapping[str, object] | None,
        since: datetime | None,
        fresh: bool,
    ) -> None:
        self._db = db
        self._since = since
        self._fresh = fresh
        self._ingested: dict[str, IngestedFile] = {}
        self._levers = levers_of(con)
        self._raw_cur = con.cursor()
        # one cursor per model worker, opened here (a cursor is opened from the session's thread)
        self._model_cursors = [con.cursor() for _ in range(MODEL_WORKERS)]
        self._free = list(self._model_cursors)
        self._local = threading.local()  # a worker's cursor, and the slices registered on it
        self._lock = threading.Lock()
        self._raw_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vtforge-raw-slices")
        self._model_pool = ThreadPoolExecutor(
            max_workers=MODEL_WORKERS, thread_name_prefix="vtforge-model-slices"
        )
        # the pools take work first in, first out: the raw cursor prepares before its first cut, and
        # a model waits only for slices submitted before it (already being cut, or cut)
        self._raw_pool.submit(self._prepare_raw, affected_sql, params)
        self._cuts: dict[str, Future[pa.Table]] = {}
        for name in slices:
            if name in MODELS_BY_NAME:
                self._cuts[name] = self._model_pool.submit(self._cut_model, name)
            else:
                self._cuts[name] = self._raw_pool.submit(self._cut_raw, name)

    def __contains__(self, name: str) -> bool:
        return name in self._cuts

    def done(self, name: str) -> bool:
        """Whether the slice of ``name`` is cut (or failed cutting)."""
        return self._cuts[name].done()

    def get(self, name: str) -> pa.Table:
        """The slice of ``name`` (waits for it; re-raises the error that cutting it raised)."""
        return self._cuts[name].result()

    def close(self) -> None:
        """Drop the cuts not begun, wait for those under way, and close the cursors."""
        for pool in (self._model_pool, self._raw_pool):
            pool.shutdown(wait=True, cancel_futures=True)
        self._raw_cur.close()
        for cursor in self._model_cursors:
            cursor.close()

    def _prepare_raw(self, affected_sql: str, params: object) -> None:
        affected = f"CREATE TEMP TABLE _affected AS SELECT DISTINCT k FROM ({affected_sql})"
        self._raw_cur.execute(affected, params)
        self._ingested = ingested_files(self._raw_cur)

    def _cut_raw(self, name: str) -> pa.Table:
        rows, params = raw_slice_sql(
            self._raw_cur, self._db, name, since=self._since, fresh=self._fresh, ingested=self._ingested
        )
        return self._raw_cur.sql(rows, params=params).to_arrow_table()

    def _cut_model(self, name: str) -> pa.Table:
        """The model's SQL over its inputs' slices, each read in place of its table on this
        worker's cursor (a registered Arrow table is a temporary view, which shadows the table of
        its name); a table without partition is read whole, as committed."""
        cursor, shown = self._model_cursor()
        for dep in MODELS_BY_NAME[name].deps:
            if dep in self._cuts and dep not in shown:
                cursor.register(dep, self.get(dep))
                shown.add(dep)
        return cursor.sql(MODELS_BY_NAME[name].sql).to_arrow_table()

    def _model_cursor(self) -> tuple[duckdb.DuckDBPyConnection, set[str]]:
        """This worker thread's cursor (given the levers and macros the SQL reads at its first
        cut) and the slices registered on it."""
        if not hasattr(self._local, "cursor"):
            with self._lock:
                cursor = self._free.pop()
            carry(cursor, self._levers)
            self._local.cursor, self._local.shown = cursor, set()
        return self._local.cursor, self._local.shown
