"""Deferred row-group merges: appends stay in row groups of their own until a table is due."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from vtforge.warehouse.compaction import TABLE, checkpoint, commit, record_writes
from vtforge.warehouse.connection import writer


def _row_groups(db: Path, table: str) -> list[int]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            f"SELECT row_group_id, max(count) FROM pragma_storage_info('{table}') "
            "WHERE column_id = 0 GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return [count for _, count in rows]


def _build(db: Path, every: int) -> list[int]:
    """A table of 130,000 rows, rebuilt whole (not merged: its count starts at 0); its row groups."""
    with writer(db) as con:
        con.execute("CREATE TABLE t AS SELECT i, 'row ' || i AS s FROM range(130000) r(i)")
        record_writes(con, rebuilt=["t"], every=every)
        state = con.execute(f"SELECT appends, merge_due FROM {TABLE} WHERE table_name = 't'").fetchone()
    assert state == (0, False)
    return _row_groups(db, "t")


def _append(db: Path, rows: int, every: int) -> None:
    with writer(db) as con:
        con.execute("BEGIN")
        con.execute(f"INSERT INTO t SELECT i, 'row ' || i FROM range({rows}) r(i)")
        record_writes(con, appended=["t"], every=every)
        con.execute("COMMIT")


def test_appends_are_merged_every_nth_session_and_no_row_is_lost(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    built = _build(db, every=3)
    assert sum(built) == 130000

    _append(db, 1000, every=3)
    _append(db, 1000, every=3)
    deferred = _row_groups(db, "t")
    # each session's rows sit in a row group of their own: nothing was rewritten
    assert deferred[: len(built)] == built
    assert deferred[len(built) :] == [1000, 1000]

    _append(db, 1000, every=3)  # the third append since the last merge: due
    merged = _row_groups(db, "t")
    assert merged[: len(built)] == built
    assert merged[len(built) :] == [3000]  # the three sessions' groups, merged into one
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT i) FROM t").fetchone() == (133000, 130000)
        state = con.execute(
            f"SELECT appends, merge_due, merged_at IS NOT NULL FROM {TABLE} WHERE table_name = 't'"
        ).fetchone()
    assert state == (0, False, True)

    _append(db, 1000, every=3)  # counting starts again
    assert _row_groups(db, "t")[len(built) :] == [3000, 1000]


def test_a_large_every_never_rewrites_what_was_written(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    built = _build(db, every=100)
    for _ in range(4):
        _append(db, 1000, every=100)
    assert _row_groups(db, "t") == [*built, 1000, 1000, 1000, 1000]


def _string_encodings(db: Path, table: str) -> list[set[str]]:
    """Per row group, the compression of its string segments."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            f"SELECT row_group_id, list(DISTINCT compression) FROM pragma_storage_info('{table}') "
            "WHERE segment_type = 'VARCHAR' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return [set(methods) for _, methods in rows]


def _append_unique(db: Path, start: int, rows: int, every: int) -> None:
    """Unique, compressible strings: FSST's case (a dictionary gains nothing on them)."""
    with writer(db) as con:
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO t SELECT i, 'the same long prefix of every string, then ' || i "
            f"FROM range({start}, {start + rows}) r(i)"
        )
        record_writes(con, appended=["t"], every=every)
        con.execute("COMMIT")


def test_appends_to_a_v1_0_file_are_written_without_fsst_until_their_merge_encodes_them_again(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.duckdb"
    with writer(db, storage_version="v1.0.0") as con:
        con.execute("CREATE TABLE t (i BIGINT, s VARCHAR)")
    _append_unique(db, 0, 5000, every=2)
    light = _string_encodings(db, "t")
    assert light and not any("FSST" in methods for methods in light)

    _append_unique(db, 5000, 5000, every=2)  # due: the merge encodes with every method
    merged = _string_encodings(db, "t")
    assert merged == [{"FSST"}]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT s) FROM t").fetchone() == (10000, 10000)


@pytest.mark.parametrize("storage_version", ["v1.3.0", "latest"])
def test_appends_to_a_newer_file_keep_their_dictionary_encoding(tmp_path: Path, storage_version: str) -> None:
    """From v1.3.0 on strings are encoded as DICT_FSST, which the light checkpoint keeps: leaving it
    out too would store the appended strings uncompressed."""
    db = tmp_path / "w.duckdb"
    with writer(db, storage_version=storage_version) as con:
        con.execute("CREATE TABLE t (i BIGINT, s VARCHAR)")
    _append_unique(db, 0, 5000, every=2)
    assert _string_encodings(db, "t") == [{"DICT_FSST"}]


def _wal_size(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute(
        "SELECT wal_size FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchall()[0][0]


def test_a_commit_checkpoints_unless_a_table_is_due_for_its_merge(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    built = _build(db, every=2)
    with writer(db) as con:
        con.execute("BEGIN")
        con.execute("INSERT INTO t SELECT i, 'row ' || i FROM range(1000) r(i)")
        record_writes(con, appended=["t"], every=2)
        commit(con)
        assert _wal_size(con) == "0 bytes"  # written into the file at the commit
        threshold = con.execute("SELECT current_setting('checkpoint_threshold')").fetchall()
        assert threshold != [("0 bytes",)]  # the commit's settings are its own

        con.execute("BEGIN")
        con.execute("INSERT INTO t SELECT i, 'row ' || i FROM range(1000) r(i)")
        record_writes(con, appended=["t"], every=2)  # due
        commit(con)
        assert _wal_size(con) != "0 bytes"  # a plain commit: the checkpoint merges
        assert checkpoint(con) == ["t"]
    merged = _row_groups(db, "t")
    assert merged[: len(built)] == built and merged[len(built) :] == [2000]  # both appends, one group
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(132000,)]
