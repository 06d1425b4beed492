"""Polars over the warehouse, for analysts: ``vtforge.analysis.open(config)``.

The object it returns reads one **snapshot** of the warehouse plus the landing zone, through
``vtforge.warehouse.reader.open_reader`` — so, like ``vtforge sql``, it never blocks the writer
(the shared lock is held only for the file copy) and does not wait long for a busy one (it takes
the newest earlier snapshot). Its answers stay consistent for as long as it is open; open it again
to see newer data.

* ``a.table("rollouts")`` → ``polars.LazyFrame`` over a warehouse table (or ``"landing.rollout"``,
  ``"landing.events"``: the landing views, readable before anything was materialised);
* ``a.sql("SELECT …")`` → ``polars.DataFrame``, DuckDB SQL over the same views;
* ``a.tables()`` → the names ``table`` takes.

Why our own polars IO source rather than DuckDB's ``relation.pl(lazy=True)``: a lazy frame from it
is bound to one DuckDB connection, and polars scans the two sides of a join (or a self-join) at the
same time, which DuckDB 2 refuses ("connection is busy"). Each scan here opens its own cursor on
the shared in-memory database, so any number of frames from one ``Analysis`` combine freely.
Projections and row limits are pushed to DuckDB; predicates are applied by polars per batch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
from polars.io.plugins import register_io_source

from vtforge.config import load_config
from vtforge.warehouse.connection import quote_identifier
from vtforge.warehouse.reader import open_reader

if TYPE_CHECKING:
    from vtforge.config import Config

__all__ = ["Analysis", "open"]

BATCH_ROWS = 131_072


class Analysis:
    """Lazy polars frames and SQL over one warehouse snapshot and the landing views."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config) -> None:
        self.config = config
        self._con = con
        # cursor() on a connection another thread is querying is refused, so the parent connection
        # only ever hands out cursors, one at a time
        self._cursor_lock = threading.Lock()
        self._closed = False

    # -- what there is -------------------------------------------------------------------------

    def tables(self) -> list[str]:
        """Warehouse tables (unqualified; landing views too while the warehouse lacks that name),
        then every landing view as ``landing.<name>``."""
        cur = self._cursor()
        try:
            rows = cur.execute(
                "SELECT schema_name, view_name FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal "
                "AND schema_name IN ('main', 'landing') ORDER BY schema_name = 'landing', view_name"
            ).fetchall()
        finally:
            cur.close()
        return [name if schema == "main" else f"{schema}.{name}" for schema, name in rows]

    def table(self, name: str) -> pl.LazyFrame:
        """A lazy frame over ``name`` (see ``tables()``); it reads when collected, while this is open."""
        if name not in self.tables():
            raise KeyError(f"no table or view {name!r}; there are: {', '.join(self.tables()) or 'none'}")
        ref = ".".join(quote_identifier(part) for part in name.split(".", 1))
        return self._lazy(f"SELECT * FROM {ref}", explain=name)

    def sql(self, query: str, params: object = None) -> pl.DataFrame:
        """Run one DuckDB query over the same views; the result as an eager polars frame."""
        cur = self._cursor()
        try:
            relation = cur.sql(query, params=params)
            # a statement that returns nothing (CREATE TEMP …, SET …) ran; it has no rows to show
            return (
                pl.DataFrame() if relation is None else pl.DataFrame(pl.from_arrow(relation.to_arrow_table()))
            )
        finally:
            cur.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection (one thread at a time; use ``.cursor()`` for more)."""
        return self._con

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the snapshot; frames made here can no longer be collected."""
        if not self._closed:
            self._closed = True
            self._con.close()

    def __enter__(self) -> Analysis:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise RuntimeError("this Analysis is closed: open it again with vtforge.analysis.open()")
        with self._cursor_lock:
            return self._con.cursor()

    def _lazy(self, select: str, *, explain: str) -> pl.LazyFrame:
        cur = self._cursor()
        try:
            empty = cur.sql(f"SELECT * FROM ({select}) LIMIT 0").to_arrow_table()
        finally:
            cur.close()
        schema = pl.DataFrame(pl.from_arrow(empty)).schema

        def scan(
            with_columns: list[str] | None,
            predicate: pl.Expr | None,
            n_rows: int | None,
            batch_size: int | None,
        ) -> Iterator[pl.DataFrame]:
            columns = ", ".join(map(quote_identifier, with_columns)) if with_columns else "*"
            query = f"SELECT {columns} FROM ({select})"
            if n_rows is not None and predicate is None:
                query += f" LIMIT {int(n_rows)}"
            cur = self._cursor()
            reader: Any = None
            try:
                relation = cur.sql(query)
                # DuckDB 2 names it to_arrow_reader; 1.x (still allowed by pyproject) fetch_arrow_reader
                to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
                reader = to_reader(batch_size or BATCH_ROWS)
                left = n_rows
                for batch in iter(reader.read_next_batch, None):
                    frame = pl.DataFrame(pl.from_arrow(batch))
                    if predicate is not None:
                        frame = frame.filter(predicate)
                    if left is not None:
                        frame = frame.head(left)
                        left -= frame.height
                    yield frame
                    if left is not None and left <= 0:
                        break
            finally:
                if reader is not None:
                    reader.close()
                cur.close()

        return register_io_source(scan, schema=schema, is_pure=True, explain_name=f"vtforge {explain}")


def open(config: Config | None = None, *, timeout_s: float = 120.0) -> Analysis:
    """An ``Analysis`` over a snapshot of ``config``'s warehouse (the cwd's config when None).

    ``timeout_s`` bounds the wait only when a writer is busy and no earlier snapshot exists."""
    config = config if config is not None else load_config()
    return Analysis(open_reader(config, timeout_s=timeout_s), config)
