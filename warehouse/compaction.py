"""Deferred row-group merges: a checkpoint merges small row groups only for tables that are due.

A DuckDB checkpoint after an append merges the table's partly filled row groups with the new rows
("vacuum"), which decompresses and compresses again up to two full row groups of every table
appended to: 0.7 s for ``rollouts`` alone after +1 % events, most of an incremental refresh. So the
writer checkpoints with merging off (``max_vacuum_tasks = 0``: each session's rows stay in row
groups of their own), counts the appends per table in ``_compaction``, and turns merging on for
the checkpoint of a session in which a table reaches ``forge.warehouse.compact_every`` appends.
The merge then rewrites once what each append would have rewritten; scans barely notice the small
groups in between. The counts live in the file, so they hold across processes and Dagster runs.

A table rebuilt whole starts counting again and is not merged: merging the few partly filled row
groups a parallel ``CREATE TABLE AS`` leaves cost 2–3 s of a full materialisation of 1M events,
for scans that do not notice them.

The same goes for encoding: a checkpoint with no table due writes its appended rows without FSST
(``LIGHT_ENCODING``), whose symbol-table training on every string column was half of an
incremental refresh's checkpoint in a ``v1.0.0`` file (0.19 → 0.09 s after +1 % events, for 0.5 MB
more on disk). The due merge re-encodes those row groups with every method, FSST included. Files of
``v1.3.0`` on (the default) encode strings as DICT_FSST, which is cheap and stays on: leaving it out
too stored the appended strings uncompressed (+13 MB after +1 % events, no faster).
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

TABLE = "_compaction"
_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    table_name VARCHAR NOT NULL, appends BIGINT NOT NULL, merge_due BOOLEAN NOT NULL,
    merged_at TIMESTAMPTZ)"""


def defer_merges(con: duckdb.DuckDBPyConnection) -> None:
    """Checkpoints of this connection (an automatic one at a commit too) merge no row groups."""
    con.execute("SET max_vacuum_tasks = 0")


def record_writes(
    con: duckdb.DuckDBPyConnection,
    *,
    appended: Iterable[str] = (),
    rebuilt: Iterable[str] = (),
    every: int,
) -> None:
    """Count one append for each table of ``appended`` (due at ``every``); ``rebuilt`` tables
    start counting again. Runs in the caller's transaction, so it counts exactly what was
    committed."""
    appended, rebuilt = set(appended) - set(rebuilt), set(rebuilt)
    names = sorted(appended | rebuilt)
    if not names:
        return
    con.execute(_DDL)
    known = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT table_name, appends, merged_at FROM {TABLE} WHERE table_name IN ?", [names]
        ).fetchall()
    }
    rows = []
    for name in names:
        appends, merged_at = known.get(name, (0, None))
        appends = appends + 1 if name in appended else 0
        rows.append([name, appends, appends >= every, merged_at])
    con.execute(f"DELETE FROM {TABLE} WHERE table_name IN ?", [names])
    con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?)", rows)


LIGHT_ENCODING = "fsst"  # what a checkpoint with no table due leaves out (DICT_FSST stays)


def checkpoint(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Checkpoint; merge row groups when a table is due (then its count starts again), else write
    the appended rows with the light encoding. The tables that were due."""
    due = _due(con)
    if due:  # merging on before the update: its commit may checkpoint already (a large WAL)
        con.execute("RESET max_vacuum_tasks")
        con.execute(f"UPDATE {TABLE} SET appends = 0, merge_due = false, merged_at = now() WHERE merge_due")
        con.execute("CHECKPOINT")
        defer_merges(con)
    else:
        con.execute(f"SET disabled_compression_methods = '{LIGHT_ENCODING}'")
        try:
            con.execute("CHECKPOINT")
        finally:
            con.execute("RESET disabled_compression_methods")
    return due


# the settings of a commit that checkpoints: any change passes the threshold, and even a small
# one skips the WAL; the checkpoint writes with the light encoding (no table is due)
_AT_COMMIT = {
    "checkpoint_threshold": "0 B",
    "auto_checkpoint_skip_wal_threshold": "0",
    "disabled_compression_methods": LIGHT_ENCODING,
}


def commit(con: duckdb.DuckDBPyConnection) -> None:
    """``COMMIT`` the caller's transaction and checkpoint in the same step, unless a table is due
    for its merge (``checkpoint`` then merges it). DuckDB checkpoints at a commit whose changes
    pass ``checkpoint_threshold`` and writes them straight into the file, not into the WAL first
    and into the file again at the next checkpoint. Whether it does is DuckDB's call (not while
    another transaction needs the old state); if not, the commit went to the WAL and the next
    ``checkpoint`` writes it."""
    if _due(con):
        con.execute("COMMIT")
        return
    restore = {
        name: value
        for name, value in con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ?", [list(_AT_COMMIT)]
        ).fetchall()
    }
    for name, value in _AT_COMMIT.items():
        if name in restore:  # the WAL-skipping threshold is DuckDB 2's
            con.execute(f"SET {name} = '{value}'")
    try:
        con.execute("COMMIT")
    finally:
        for name, value in restore.items():
            con.execute(f"SET {name} = '{value}'")


def _due(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables due for a merge (none before anything was recorded); a lookup that fails would
    abort the caller's transaction, so the table's existence is asked first."""
    if not con.execute(
        "SELECT 1 FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main' AND NOT temporary "
        "AND database_name = current_database()",
        [TABLE],
    ).fetchall():
        return []
    return [row[0] for row in con.execute(f"SELECT table_name FROM {TABLE} WHERE merge_due").fetchall()]
