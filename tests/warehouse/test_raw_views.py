"""The raw layer reads the landing files in place: what it does when files age, vanish or change.

``raw_<event_type>`` is a view over exactly the ingested landing files of its type (less the copies
dropped as duplicates); ingest writes only envelopes. These tests hold it to what a table would
give: the same rows, NULLs for columns older files lack, and no stale or missing rows when the
landing zone changes under it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from tests.warehouse.conftest import emit, make_workspace
from tests.warehouse.streams import hand_stream
from vtforge.config import Config, load_config
from vtforge.transport.landing import landing_files, write_parquet_atomic
from vtforge.warehouse.connection import writer
from vtforge.warehouse.refresh import refresh


def _config(tmp_path: Path) -> Config:
    root = make_workspace(tmp_path / "ws")
    return load_config(root / "vtcode.toml", cwd=root, env={})


def _rows(config: Config, sql: str) -> list[tuple]:
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _rollout_file(config: Config) -> Path:
    return next(p for p in landing_files(config.landing_dir) if p.parent.parent.name == "rollout")


def test_raw_views_hold_no_payload_copies_and_match_the_landing_files(tmp_path: Path) -> None:
    config = _config(tmp_path)
    emit(config, hand_stream())
    refresh(config, exports=False)
    kinds = dict(_rows(config, "SELECT table_name, table_type FROM information_schema.tables"))
    assert kinds["raw_rollout"] == "VIEW" and kinds["events"] == "BASE TABLE"
    landed = sum(pq.read_metadata(p).num_rows for p in landing_files(config.landing_dir / "rollout"))
    ((viewed, distinct),) = _rows(config, "SELECT count(*), count(DISTINCT event_id) FROM raw_rollout")
    assert viewed == distinct == landed > 0
    # the payload is there, read from the files: every rollout has its messages
    assert _rows(config, "SELECT count(*) FROM raw_rollout WHERE messages IS NULL") == [(0,)]


def test_a_redelivered_file_is_read_once(tmp_path: Path) -> None:
    config = _config(tmp_path)
    emit(config, hand_stream())
    refresh(config, exports=False)
    before = _rows(config, "SELECT count(*) FROM raw_rollout")
    source = _rollout_file(config)
    write_parquet_atomic(pq.read_table(source), source.with_name("copy-of-" + source.name))
    rows = refresh(config, exports=False)
    assert rows["raw_rollout"] == 0  # nothing new: every event of the copy was seen
    assert _rows(config, "SELECT count(*) FROM raw_rollout") == before
    redelivered = pq.read_metadata(source).num_rows
    assert _rows(
        config,
        "SELECT count(*), count(*) FILTER (WHERE payload_hash = kept_payload_hash) FROM _duplicate_events",
    ) == [(redelivered, redelivered)]


def test_a_warehouse_from_before_the_id_hash_gets_it_and_still_finds_redeliveries(tmp_path: Path) -> None:
    config = _config(tmp_path)
    emit(config, hand_stream())
    refresh(config, exports=False)
    with writer(config.duckdb_path) as con:  # as a warehouse written before the column was
        con.execute("ALTER TABLE events DROP COLUMN _id_hash")
    before = _rows(config, "SELECT count(*) FROM raw_rollout")
    source = _rollout_file(config)
    write_parquet_atomic(pq.read_table(source), source.with_name("copy-of-" + source.name))
    rows = refresh(config, exports=False)
    assert rows["raw_rollout"] == 0 and _rows(config, "SELECT count(*) FROM raw_rollout") == before
    stale = "SELECT count(*) FROM events WHERE _id_hash IS DISTINCT FROM hash(event_type, event_id)"
    assert _rows(config, stale) == [(0,)]


def test_an_older_schema_file_reads_nulls_in_the_newer_columns(tmp_path: Path) -> None:
    config = _config(tmp_path)
    emit(config, hand_stream())
    source = _rollout_file(config)
    table = pq.read_table(source)
    dropped = "reasoning"
    assert dropped in table.column_names
    write_parquet_atomic(table.drop_columns([dropped]), source)  # as a writer of an older version
    refresh(config, exports=False)
    assert _rows(config, f"SELECT count(*), count({dropped}) FROM raw_rollout") == [(table.num_rows, 0)]


def test_a_vanished_landing_file_leaves_the_raw_layer_and_the_models(tmp_path: Path) -> None:
    config = _config(tmp_path)
    emit(config, hand_stream())
    refresh(config, exports=False)
    source = _rollout_file(config)
    gone = {r["rollout_id"] for r in pq.read_table(source, columns=["rollout_id"]).to_pylist()}
    source.unlink()
    refresh(config, exports=False)  # no error over the missing file
    remaining = sum(pq.read_metadata(p).num_rows for p in landing_files(config.landing_dir / "rollout"))
    assert _rows(config, "SELECT count(*) FROM raw_rollout") == [(remaining,)]
    left = {r[0] for r in _rows(config, "SELECT rollout_id FROM rollouts")}
    assert not gone & left
    full = _rows(config, "SELECT count(*) FROM rollouts")
    refresh(config, exports=False, full=True)
    assert _rows(config, "SELECT count(*) FROM rollouts") == full


def test_a_warehouse_with_raw_tables_is_rebuilt_over_views(tmp_path: Path) -> None:
    """A file from before the views (raw tables with payload copies) is migrated on the next refresh."""
    config = _config(tmp_path)
    emit(config, hand_stream())
    refresh(config, exports=False)
    expected = _rows(config, "SELECT count(*) FROM rollouts")
    with writer(config.duckdb_path) as con:
        con.execute("DROP VIEW raw_rollout")
        con.execute("CREATE TABLE raw_rollout (event_id VARCHAR, payload_copy VARCHAR)")
        con.execute("INSERT INTO raw_rollout VALUES ('stale', 'x')")
    refresh(config, exports=False)
    kinds = dict(_rows(config, "SELECT table_name, table_type FROM information_schema.tables"))
    assert kinds["raw_rollout"] == "VIEW"
    assert _rows(config, "SELECT count(*) FROM raw_rollout WHERE event_id = 'stale'") == [(0,)]
    assert _rows(config, "SELECT count(*) FROM rollouts") == expected
