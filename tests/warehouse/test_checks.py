"""Planted duplicates, orphans and unknown schema versions are caught; re-deliveries are not errors."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.conftest import config_here, emit, make_workspace, materialize_in_process
from tests.warehouse.streams import T1, Stream, hand_stream
from vtforge.schemas import Codec, default_catalog
from vtforge.transport.landing import write_events
from vtforge.warehouse import checks
from vtforge.warehouse.refresh import refresh


@pytest.fixture
def config(workspace: Path):
    make_workspace(workspace)
    return config_here()


def open_db(config) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(config.duckdb_path), read_only=True)


def test_redelivered_events_are_dropped_and_ingest_is_incremental(config) -> None:
    events = hand_stream()
    emit(config, events)
    emit(config, events)  # at-least-once transport: every event arrives twice, in other files
    first = refresh(config, exports=False)
    assert first["raw_rollout"] == 10
    with open_db(config) as con:
        assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (34, 34)
        outcome = checks.unique_event_ids(con)
    assert outcome.passed, outcome.description
    assert outcome.metadata["redeliveries_dropped"] == 34
    again = refresh(config, exports=False)  # nothing new: no file is read twice
    assert again["raw_rollout"] == 0
    with open_db(config) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 34
        assert con.execute("SELECT count(*) FROM rollouts").fetchone()[0] == 10


def test_two_events_sharing_an_id_with_different_payloads_fail_the_check(config) -> None:
    events = hand_stream()
    clash = copy.deepcopy(next(e for e in events if e.get("rollout_id") == "L1"))
    clash["model"] = "another-model"  # same event_id, different content
    emit(config, events)
    emit(config, [clash])
    refresh(config, exports=False)
    with open_db(config) as con:
        outcome = checks.unique_event_ids(con)
    assert not outcome.passed
    assert clash["envelope"]["event_id"] in outcome.description
    assert outcome.metadata["conflicting_ids"] == 1


def test_orphan_executions_and_rewards_are_caught(config) -> None:
    extra = Stream()
    extra.execution("E-orphan", T1, "P-missing", None, [("t/x.py::t", "PASSED")])
    extra.reward("R-orphan", T1, "P1", "B1", "E-missing", "v0", 1.0)
    emit(config, [*hand_stream(), *extra.events])
    refresh(config, exports=False)
    with open_db(config) as con:
        executions = checks.no_orphan_executions(con)
        rewards = checks.no_orphan_rewards(con)
    assert not executions.passed and "E-orphan → missing patch P-missing" in executions.description
    assert not rewards.passed and "R-orphan → missing execution E-missing" in rewards.description
    assert executions.metadata["orphans"] == 1 and rewards.metadata["orphans"] == 1


def test_unknown_schema_versions_are_caught(config) -> None:
    emit(config, hand_stream())
    codec = Codec()
    odd = codec.decode(codec.encode(hand_stream()[0]))  # a complete record, defaults filled in
    odd["envelope"]["event_id"] = "from-the-future"
    odd["envelope"]["schema_version"] = 99
    write_events(config.landing_dir, default_catalog().current("task_registered"), [odd], "planted")
    refresh(config, exports=False)
    with open_db(config) as con:
        outcome = checks.known_schema_versions(con)
        fresh = checks.raw_events_fresh(con, timedelta(days=36500))
    assert not outcome.passed and "task_registered.v99 (1)" in outcome.description
    assert fresh.passed


def _conflicting_duplicate() -> list[dict]:
    clash = copy.deepcopy(next(e for e in hand_stream() if e.get("rollout_id") == "L1"))
    clash["model"] = "another-model"
    return [clash]


def _orphan_reward() -> list[dict]:
    extra = Stream()
    extra.reward("R-orphan", T1, "P-missing", "B1", "E1", "v0", 1.0)
    return extra.events


@pytest.mark.slow
@pytest.mark.parametrize(
    ("plant", "failing", "built"),
    [
        (_orphan_reward, "no_orphan_rewards", {"events", "rewards", "executions", "tasks"}),
        (_conflicting_duplicate, "unique_event_ids", {"events", "raw_rollout"}),
    ],
)
def test_a_failed_blocking_check_stops_the_datasets_downstream(config, plant, failing, built) -> None:
    emit(config, hand_stream())
    emit(config, plant())
    result = materialize_in_process(config)
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {failing, "raw_events_fresh"}
    materialized = {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }
    assert built <= materialized
    assert not {"rollout_outcomes", "sft_examples", "replay_buffer", "curriculum_gates"} & materialized
