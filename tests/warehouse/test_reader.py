"""Reading never blocks the single writer, and the landing zone is queryable before any run."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.cli import invoke
from tests.warehouse.conftest import config_here, emit, make_workspace
from tests.warehouse.streams import Stream, hand_stream
from vtforge.warehouse.connection import writer
from vtforge.warehouse.reader import open_reader
from vtforge.warehouse.refresh import refresh


@pytest.fixture
def config(workspace: Path):
    make_workspace(workspace)
    return config_here()


def test_sql_reads_the_landing_zone_before_anything_is_materialised(config) -> None:
    emit(config, hand_stream())
    assert not config.duckdb_path.exists()
    events = invoke("sql", "SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1", "-f", "csv")
    assert events.exit_code == 0, events.output
    assert "rollout,10" in events.stdout.splitlines() and "task_registered,2" in events.stdout.splitlines()
    hive = invoke("sql", "SELECT DISTINCT date FROM landing.rollout", "-f", "csv")
    assert hive.stdout.splitlines() == ["date", "2026-01-05"]
    unqualified = invoke("sql", "SELECT count(*) AS n FROM patch_proposed", "-f", "csv")
    assert unqualified.stdout.splitlines() == ["n", "5"]


def test_an_open_reader_does_not_block_the_writer(config) -> None:
    emit(config, hand_stream())
    refresh(config, exports=False)
    reader = open_reader(config)  # stays open, like an interactive `vtforge sql` session
    try:
        more = Stream()
        more.rollout("late", "org__repo-1", "bugfixer", "v1", 7)
        emit(config, more.events)
        rows = refresh(config, exports=False)  # the writer is not blocked by the open reader
        assert rows["rollouts"] == 11
        assert reader.execute("SELECT count(*) FROM rollouts").fetchone()[0] == 10  # its own snapshot
    finally:
        reader.close()
    with open_reader(config) as fresh:
        assert fresh.execute("SELECT count(*) FROM rollouts").fetchone()[0] == 11


def test_a_reader_does_not_wait_for_a_busy_writer(config) -> None:
    emit(config, hand_stream())
    refresh(config, exports=False)
    with open_reader(config) as first:
        assert first.execute("SELECT count(*) FROM tasks").fetchone()[0] == 2
    holding, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with writer(config.duckdb_path) as con:
            con.execute("CREATE OR REPLACE TABLE scratch AS SELECT 1 AS x")
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=long_write)
    thread.start()
    try:
        assert holding.wait(30)
        with open_reader(config) as during:  # the writer still holds the lock: the last snapshot is read
            assert during.execute("SELECT count(*) FROM tasks").fetchone()[0] == 2
    finally:
        release.set()
        thread.join()
