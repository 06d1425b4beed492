"""The affected tasks' rows of the raw views, cut on a second cursor while a build session runs.

A raw slice reads only what the session does not write: landing files, and ``events`` as the load
committed it. So a session (``incremental.Builder``) need not cut them in its own transaction, one
after the other between its model builds: :class:`RawSlices` cuts them in a thread, in the order
the models read them, and hands each over as an Arrow table that the session's cursor scans in
place (``register``). A refresh uses about one of two cores (DuckDB's fixed cost per statement
dominates small slices), so the cuts run beside the model builds instead of before them.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

import duckdb
import pyarrow as pa

from vtforge.warehouse.load import IngestedFile, columns_of, ingested_files, raw_select


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
    as when new events are new tasks' events."""
    event_type = view.removeprefix("raw_")
    events = f"{db}.main.events"
    params: dict[str, object] = {"type": event_type}
    where = "event_type = $type AND coalesce(task_id, '') IN (SELECT k FROM temp._affected)"
    if since is not None:
        params["since"] = since
        older = f"SELECT 1 FROM {events} WHERE {where} AND _ingested_at <= $since LIMIT 1"
        if fresh or not con.execute(older, params).fetchall():
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


class RawSlices:
    """Cuts the slices of ``views`` in a thread, in that order, on a cursor of its own.

    ``affected_sql`` (with ``params``) selects the session's affected task keys (column ``k``) from
    committed tables, as the session itself did. :meth:`close` before the session commits: an open
    read would keep DuckDB from checkpointing at that commit."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        db: str,
        views: list[str],
        *,
        affected_sql: str,
        params: dict[str, object] | None,
        since: datetime | None,
        fresh: bool,
    ) -> None:
        self._cur = con.cursor()
        self._db = db
        self._since = since
        self._fresh = fresh
        self._ingested: dict[str, IngestedFile] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vtforge-raw-slices")
        self._pool.submit(self._prepare, affected_sql, params)  # one worker: it runs first
        self._cuts: dict[str, Future[pa.Table]] = {view: self._pool.submit(self._cut, view) for view in views}

    def __contains__(self, view: str) -> bool:
        return view in self._cuts

    def get(self, view: str) -> pa.Table:
        """The slice of ``view`` (waits for it; re-raises the error that cutting it raised)."""
        return self._cuts[view].result()

    def close(self) -> None:
        """Drop the cuts not begun, wait for the one under way, and close the cursor."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._cur.close()

    def _prepare(self, affected_sql: str, params: dict[str, object] | None) -> None:
        self._cur.execute(f"CREATE TEMP TABLE _affected AS SELECT DISTINCT k FROM ({affected_sql})", params)
        self._ingested = ingested_files(self._cur)

    def _cut(self, view: str) -> pa.Table:
        rows, params = raw_slice_sql(
            self._cur, self._db, view, since=self._since, fresh=self._fresh, ingested=self._ingested
        )
        return self._cur.sql(rows, params=params).to_arrow_table()
