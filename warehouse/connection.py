"""Opening the warehouse: one writer per DuckDB file, and readers that never block it.

DuckDB lets one process open a database file for writing, and a process that holds it read-only
also keeps writers out. So:

* **writers** take an exclusive ``flock`` on ``<db>.lock`` before opening the file, and checkpoint
  and close it before letting go. A second writer (a Dagster run, ``vtforge materialize``) waits
  for the lock instead of failing on DuckDB's own file lock;
* **readers** (``vtforge sql``, ``vtforge report``, the trainers) take the same lock *shared* just
  long enough to copy the closed, checkpointed file to a snapshot, then query the snapshot. The
  pipeline never waits for a reader, however long an interactive session stays open; a reader
  that finds a writer busy reads the newest earlier snapshot rather than waiting. Snapshots are
  reused while the warehouse file is unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from vtforge.locks import FileLock
from vtforge.warehouse.compaction import checkpoint, defer_merges

LOCK_SUFFIX = ".lock"
SNAPSHOT_DIR = "snapshots"
KEEP_SNAPSHOTS = 3


class WarehouseBusy(TimeoutError):
    """The warehouse lock could not be taken in time."""


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool, timeout_s: float) -> Iterator[None]:
    """The warehouse's reader (shared) or writer (exclusive) lock, polled until ``timeout_s``."""
    lock = FileLock(path, shared=shared)
    if not lock.acquire(timeout_s):
        kind = "read" if shared else "write"
        raise WarehouseBusy(f"{path}: could not take the {kind} lock in {timeout_s:.0f}s")
    try:
        yield
    finally:
        lock.release()


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def writer(
    db_path: Path, *, timeout_s: float = 600.0, storage_version: str = "latest"
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The single writing connection; the file is checkpointed and closed before the lock is freed
    (row groups are merged only for tables that are due: ``compaction``).

    ``storage_version`` (``forge.warehouse.storage_version``) is the DuckDB storage format of a file
    this creates: ``v1.3.0`` is read by every DuckDB from 1.3 on, while DuckDB 2's own default
    (``latest``) is refused by 1.x clients. An existing file keeps the format it was created with.
    """
    db_path = Path(db_path)
    settings = {} if storage_version == "latest" else {"storage_compatibility_version": storage_version}
    with file_lock(lock_path(db_path), shared=False, timeout_s=timeout_s):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(db_path), config=settings)
        con.execute("SET parquet_metadata_cache = true")  # the raw views re-read the same footers
        # a table's rows have no order (readers and exports say ORDER BY): inserts write in parallel
        con.execute("SET preserve_insertion_order = false")
        defer_merges(con)
        try:
            yield con
            checkpoint(con)  # merging the row groups of the tables that are due
        finally:
            con.close()


def snapshot(db_path: Path, *, timeout_s: float = 120.0, patience_s: float = 2.0) -> Path | None:
    """A read-only copy of the warehouse as of the last finished write (None: no warehouse yet).

    While a writer holds the lock for more than ``patience_s``, the newest existing snapshot is
    returned instead (consistent, a little older); with none yet, wait up to ``timeout_s``.
    """
    db_path = Path(db_path)
    try:
        return _copy_snapshot(db_path, timeout_s=patience_s)
    except WarehouseBusy:
        existing = latest_snapshot(db_path)
        if existing is not None:
            return existing
        return _copy_snapshot(db_path, timeout_s=timeout_s)


def latest_snapshot(db_path: Path) -> Path | None:
    folder = Path(db_path).parent / SNAPSHOT_DIR
    found = sorted(folder.glob(f"{Path(db_path).stem}-*.duckdb"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _copy_snapshot(db_path: Path, *, timeout_s: float) -> Path | None:
    folder = db_path.parent / SNAPSHOT_DIR
    with file_lock(lock_path(db_path), shared=True, timeout_s=timeout_s):
        if not db_path.exists():
            return None
        stat = db_path.stat()
        target = folder / f"{db_path.stem}-{stat.st_mtime_ns}-{stat.st_size}.duckdb"
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(db_path, tmp)
            os.replace(tmp, target)
    _prune(folder, keep=target)
    return target


def _prune(folder: Path, keep: Path) -> None:
    """Drop old snapshots (a reader that still has one open keeps its inode until it closes)."""
    old = sorted((p for p in folder.glob("*.duckdb") if p != keep), key=lambda p: p.stat().st_mtime)
    for stale in old[: max(0, len(old) - (KEEP_SNAPSHOTS - 1))]:
        stale.unlink(missing_ok=True)


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier (a database named after a file stem may hold any character)."""
    return '"' + name.replace('"', '""') + '"'


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> Any:
    """The one value of a query that always returns one row (a count, an aggregate). The result is
    read to its end, which ends an autocommit query's transaction: a result left open holds it,
    and DuckDB does not checkpoint at another connection's commit while it is open."""
    rows = con.execute(sql, params).fetchall()
    assert len(rows) == 1, sql
    return rows[0][0]


@functools.cache
def scratch() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process for work on no database (parsing SQL, describing Arrow
    schemas); callers take a ``cursor()`` of it, safe from any thread. A new process pays one
    in-memory ``connect`` (~20 ms after the first) instead of one per use."""
    return duckdb.connect()
