"""Incremental materialisation equals a full rebuild, whatever order and batching the events come in.

A stream with every event type (the synthetic generator, the hand-built stream with false positives
and the recipe stream) is delivered in random batches, shuffled (late events), with re-deliveries
(the same event twice) and stale rollout snapshots that arrive after the newer one. After each
batch the warehouse refreshes incrementally; at the end every model table must hold exactly what a
full rebuild from scratch produces.
"""

from __future__ import annotations

import copy
import random
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.warehouse.conftest import emit, make_workspace
from tests.warehouse.streams import hand_stream, recipe_stream
from vtforge.config import Config, load_config
from vtforge.fixtures.events import generate_events
from vtforge.warehouse.connection import writer
from vtforge.warehouse.incremental import FULL, INCREMENTAL, Builder
from vtforge.warehouse.load import load_landing
from vtforge.warehouse.models import MODELS, MODELS_BY_NAME, ModelError, build_order, prepare
from vtforge.warehouse.refresh import _next, refresh


def _base_stream(hand_built: str) -> list[dict[str, Any]]:
    """The synthetic generator's stream and one hand-built stream (the two hand-built streams reuse
    rollout ids, which real producers never do, so they are not mixed)."""
    synthetic = generate_events(
        3, 5, bugfixer_rollouts=3, testwriter_rollouts=3, policy_versions=("v0", "v1")
    )
    return [*synthetic, *(hand_stream() if hand_built == "hand" else recipe_stream())]


BASE = {name: _base_stream(name) for name in ("hand", "recipe")}


def _stale_snapshot(event: dict[str, Any]) -> dict[str, Any]:
    """An older snapshot of the same rollout (another event, earlier ``occurred_at``) delivered later."""
    older = copy.deepcopy(event)
    older["envelope"]["event_id"] = str(uuid.uuid4())
    older["envelope"]["occurred_at"] = event["envelope"]["occurred_at"] - timedelta(seconds=30)
    older["stop_reason"] = "stale-snapshot"
    older["outcome"] = None
    return older


def _delivery(
    stream: str, seed: int, batches: int, redeliver: float, stale: float
) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    events = list(BASE[stream])
    rng.shuffle(events)
    extra = [e for e in events if rng.random() < redeliver]
    extra += [
        _stale_snapshot(e)
        for e in events
        if e["envelope"]["event_type"] == "rollout" and rng.random() < stale
    ]
    stream = events + extra
    rng.shuffle(stream)
    cuts = sorted(rng.sample(range(1, len(stream)), batches - 1)) if batches > 1 else []
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def _comparable(value: Any) -> Any:
    """``value`` with floats to 12 significant digits: a float aggregate's last bits depend on the
    order its rows are summed in, which no SQL engine fixes."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    return value


def _snapshot(path: Path) -> dict[str, list[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            m.name: sorted(
                repr(_comparable(row)) for row in con.execute(f'SELECT * FROM "{m.name}"').fetchall()
            )
            for m in MODELS
        }


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.sampled_from(["hand", "recipe"]),
    seed=st.integers(0, 10_000),
    batches=st.integers(2, 4),
    redeliver=st.sampled_from([0.0, 0.05, 0.2]),
    stale=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_incremental_equals_full(
    stream: str, seed: int, batches: int, redeliver: float, stale: float
) -> None:
    with tempfile.TemporaryDirectory(prefix="vtforge-inc-") as tmp:
        root = make_workspace(Path(tmp))
        config = load_config(root / "vtcode.toml", cwd=root, env={})
        for batch in _delivery(stream, seed, batches, redeliver, stale):
            emit(config, batch)
            refresh(config, exports=False)
        incremental = _snapshot(config.duckdb_path)
        refresh(config, exports=False, full=True)
        full = _snapshot(config.duckdb_path)
    assert sum(len(rows) for rows in full.values()) > 0
    for name in full:
        assert incremental[name] == full[name], f"{name}: incremental differs from a full rebuild"


def _late_task(tmp_path: Path, n_tasks: int, seed: int, *, exports: bool) -> tuple[Config, list[dict]]:
    """A workspace refreshed with every task but one; returns it and the late task's events."""
    root = make_workspace(tmp_path)
    config = load_config(root / "vtcode.toml", cwd=root, env={})
    events = list(generate_events(n_tasks, seed, bugfixer_rollouts=2, testwriter_rollouts=2))
    late = events[0]["envelope"]["task_id"]
    emit(config, [e for e in events if e["envelope"]["task_id"] != late])
    refresh(config, exports=exports)
    return config, [e for e in events if e["envelope"]["task_id"] == late]


def test_new_events_rebuild_only_their_tasks(tmp_path: Path) -> None:
    """A second batch touching one task updates the partitioned models by slices, not whole."""
    config, late = _late_task(tmp_path, 4, 1, exports=False)
    emit(config, late)
    with writer(config.duckdb_path) as con:
        prepare(con, config)
        load_landing(con, config.landing_dir)
        with Builder(con) as builder:
            built = {m.name: builder.materialize(m.name) for m in MODELS}
    assert built["rollouts"].mode == INCREMENTAL and built["rollouts"].affected_slices == 1
    assert built["rollout_outcomes"].mode == INCREMENTAL
    assert built["sft_examples"].mode == "unchanged"  # a view: defined once, read computed
    assert built["sft_examples"].rows is None  # ... and not counted on every build
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM rollouts").fetchone()
    assert stored == (built["rollouts"].rows,)
    assert built["policy_versions"].mode != INCREMENTAL  # a table without partition is never sliced
    with writer(config.duckdb_path) as con:
        prepare(con, config)
        with Builder(con) as builder:
            again = {m.name: builder.materialize(m.name) for m in MODELS}
            forced = builder.materialize("rollouts", full=True)
    assert {b.mode for b in again.values()} == {"unchanged"}, "nothing new: nothing rebuilt"
    assert forced.mode == FULL


def test_exports_are_rewritten_only_when_a_dataset_changed(tmp_path: Path) -> None:
    config, late = _late_task(tmp_path, 3, 2, exports=True)
    first = refresh(config)
    sft = config.data_dir / "exports" / "trl" / "sft_messages.parquet"
    written = sft.stat().st_mtime_ns
    assert refresh(config)["exports/trl/sft_messages.parquet"] == first["exports/trl/sft_messages.parquet"]
    assert sft.stat().st_mtime_ns == written, "nothing new: the files stay as they were"
    emit(config, late)
    refresh(config)
    assert sft.stat().st_mtime_ns != written, "new examples: the files are rewritten"
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        in_table = con.execute("SELECT count(*) FROM sft_examples WHERE split = 'train'").fetchone()[0]
        in_file = con.execute("SELECT count(*) FROM read_parquet(?)", [str(sft)]).fetchone()[0]
    assert in_file == in_table


def test_a_warehouse_file_name_that_is_not_an_identifier_builds_incrementally(tmp_path: Path) -> None:
    """The database's name is the file's stem: ``my-warehouse`` must be quoted in every statement."""
    root = make_workspace(tmp_path)
    toml = root / "vtcode.toml"
    named = '[forge.warehouse]\nduckdb_path = "my-warehouse.duckdb"'
    toml.write_text(toml.read_text().replace("[forge.warehouse]", named))
    config = load_config(root / "vtcode.toml", cwd=root, env={})
    events = list(generate_events(2, 3, bugfixer_rollouts=2, testwriter_rollouts=2))
    late = events[0]["envelope"]["task_id"]
    emit(config, [e for e in events if e["envelope"]["task_id"] != late])
    first = refresh(config, exports=False)
    emit(config, [e for e in events if e["envelope"]["task_id"] == late])
    second = refresh(config, exports=False)
    assert config.duckdb_path.name == "my-warehouse.duckdb"
    assert 0 < first["rollouts"] < second["rollouts"]


@pytest.mark.parametrize("copied", [False, True], ids=["files-whole", "a-copy-dropped"])
def test_a_new_task_with_an_event_delivered_twice_in_its_batch_builds_as_full(
    tmp_path: Path, copied: bool
) -> None:
    """A batch of a new task's events is read from its landing files whole, unless the load dropped
    a copy from one of them (the same patch proposal twice): then the kept rows are looked up, and
    the copy counts nowhere (``telemetry_patches_by_task`` counts proposals as they come)."""
    config, late = _late_task(tmp_path, 3, 2, exports=False)
    proposal = next(e for e in late if e["envelope"]["event_type"] == "patch_proposed")
    emit(config, [*late, copy.deepcopy(proposal)] if copied else late)
    refresh(config, exports=False)
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        states = dict(con.execute("SELECT model, mode FROM _model_state").fetchall())
        dropped = con.execute("SELECT count(*) FROM _duplicate_events").fetchall()[0][0]
    assert states["telemetry_patches_by_task"] == INCREMENTAL and dropped == int(copied)
    incremental = _snapshot(config.duckdb_path)
    refresh(config, exports=False, full=True)
    assert incremental == _snapshot(config.duckdb_path)


def _wal_size(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute(
        "SELECT wal_size FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchall()[0][0]


@pytest.mark.parametrize("planned", [False, True], ids=["unplanned", "planned"])
def test_a_session_commits_into_the_file_not_the_wal(tmp_path: Path, planned: bool) -> None:
    """The session's commit checkpoints: its rows are written into the file once, not into the WAL
    first. DuckDB does not when another transaction is open, e.g. a result of the writer's own
    connection not read to its end, the cursor cutting raw slices beside a planned session, or
    when the commit deleted from an indexed table."""
    config, late = _late_task(tmp_path, 3, 1, exports=False)
    emit(config, late)
    with writer(config.duckdb_path) as con:
        prepare(con, config)
        load_landing(con, config.landing_dir)
        assert _wal_size(con) != "0 bytes"  # the load's commit went to the WAL
        plan = [m.name for m in MODELS] if planned else None
        with Builder(con, plan=plan) as builder:
            built = {m.name: builder.materialize(m.name) for m in MODELS}
        assert built["rollouts"].mode == INCREMENTAL and built["telemetry_rewards"].mode == FULL
        assert _wal_size(con) == "0 bytes"


def _session_after_a_late_task(
    tmp_path: Path, *, planned: bool, changed: str | None = None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every model's build mode and rows after one session over a late task's events, planned (the
    slices that need nothing the session writes cut on cursors beside it) or not (every slice cut
    in its own transaction). ``changed``: a model whose SQL is taken to have changed since its
    last build, so the session rebuilds it whole."""
    config, late = _late_task(tmp_path, 3, 4, exports=False)
    emit(config, late)
    with writer(config.duckdb_path) as con:
        prepare(con, config)
        load_landing(con, config.landing_dir)
        con.execute("UPDATE _model_state SET inputs_hash = 'changed' WHERE model = ?", [changed])
        plan = [m.name for m in MODELS] if planned else None
        with Builder(con, plan=plan) as builder:
            built = {m.name: builder.materialize(m.name).mode for m in MODELS}
    return built, _snapshot(config.duckdb_path)


@pytest.mark.parametrize("changed", [None, "patches"])
def test_slices_cut_beside_the_session_build_what_the_session_would(
    tmp_path: Path, changed: str | None
) -> None:
    """Beside a session, whatever it decides: by slices, or (a changed model, and every model
    after it) whole, which leaves the slices cut beside it unread."""
    planned = _session_after_a_late_task(tmp_path / "planned", planned=True, changed=changed)
    unplanned = _session_after_a_late_task(tmp_path / "unplanned", planned=False, changed=changed)
    assert planned == unplanned and planned[1]["executions"]
    modes = planned[0]
    assert modes["rollouts"] == INCREMENTAL
    assert modes["executions"] == (FULL if changed else INCREMENTAL)  # it reads patches
    assert modes["patches"] == (FULL if changed else INCREMENTAL)


def test_a_raw_slice_that_fails_beside_the_session_fails_the_model_and_rolls_back(tmp_path: Path) -> None:
    """A landing file gone after its load: the cut raises in its thread; the model that reads the
    slice fails with its name, and the session leaves the warehouse as it was."""
    config, late = _late_task(tmp_path, 3, 5, exports=False)
    emit(config, late)
    with writer(config.duckdb_path) as con:
        prepare(con, config)
        load_landing(con, config.landing_dir)
        before = con.execute("SELECT count(*) FROM rollouts").fetchall()
        newest = con.execute(
            "SELECT _file FROM events WHERE event_type = 'rollout' ORDER BY _ingested_at DESC LIMIT 1"
        ).fetchall()[0][0]
        Path(newest).unlink()
        failing = pytest.raises(ModelError, match=r"model rollouts \(warehouse/sql/rollouts.sql\)")
        with failing, Builder(con, plan=[m.name for m in MODELS]) as builder:
            for model in MODELS:
                builder.materialize(model.name)
        assert con.execute("SELECT count(*) FROM rollouts").fetchall() == before


def test_a_model_state_from_before_loses_its_key_and_keeps_its_rows(tmp_path: Path) -> None:
    """``_model_state`` had a primary key, whose index kept DuckDB from checkpointing at a commit."""
    config, late = _late_task(tmp_path, 3, 1, exports=False)
    with writer(config.duckdb_path) as con:  # the table as it was: the same columns, keyed on model
        con.execute("ALTER TABLE _model_state RENAME TO unkeyed")
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = 'unkeyed' ORDER BY column_index"
        ).fetchall()
        key = {"model": " PRIMARY KEY"}
        ddl = ", ".join(f"{name} {kind}{key.get(name, '')}" for name, kind in columns)
        con.execute(f"CREATE TABLE _model_state ({ddl})")
        con.execute("INSERT INTO _model_state SELECT * FROM unkeyed")
        con.execute("DROP TABLE unkeyed")
        before = con.execute("SELECT count(*) FROM _model_state").fetchall()
    emit(config, late)
    second = refresh(config, exports=False)
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        keys = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = '_model_state' "
            "AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()
        modes = dict(con.execute("SELECT model, mode FROM _model_state").fetchall())
        count = con.execute("SELECT count(*) FROM _model_state").fetchall()
    assert before[0][0] > 0 and keys == [(0,)] and count == before
    assert modes["rollouts"] == INCREMENTAL and second["rollouts"] > 0


class _Lane:
    """What ``refresh._next`` asks of a session: which models would wait for a slice."""

    def __init__(self, waiting: set[str]) -> None:
        self.waiting = waiting

    def ready(self, name: str) -> bool:
        return name not in self.waiting


def test_a_refresh_builds_what_needs_no_slice_while_the_slices_it_waits_for_are_cut() -> None:
    pending = build_order()
    lane = _Lane(waiting={"localizations", "patches"})
    order = [_next(pending, cast("Builder", lane)).name for _ in range(len(MODELS))]
    assert sorted(order) == sorted(m.name for m in MODELS)
    for position, name in enumerate(order):  # every model after its inputs
        assert set(MODELS_BY_NAME[name].deps) & set(order[position:]) == set(), name
    build = [m.name for m in build_order()]
    assert build.index("localizations") < build.index("skill_evaluations")
    assert order.index("skill_evaluations") < order.index("localizations")  # ready: built first
    assert order.index("localizations") < order.index("telemetry_localization")  # its input
