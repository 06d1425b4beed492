"""rl_prompts holds only runnable tasks, buckets by the measured baseline and carries frozen localization."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.warehouse.conftest import config_here, emit, materialize_in_process
from tests.warehouse.rl_stream import A, B, C, D, E, rl_stream
from vtforge.config import set_value
from vtforge.trainers.frozen_localization import Pick, frozen_event
from vtforge.warehouse.reader import open_reader

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def materialised(module_workspace: Path):
    config = config_here()
    emit(config, rl_stream())
    emit(config, [frozen_event(Pick(A, ["a.py", "x.py"], "LA0", False), "v0", request="grpo-test")])
    # another policy's frozen copy of B's localization: ignored, since the lever names v0
    emit(config, [frozen_event(Pick(B, ["nope.py"], "LB0", False), "v9", request="grpo-old")])
    set_value(config.files[-1], "forge.train.frozen_localization_policy", "v0")
    config = config_here()
    result = materialize_in_process(config)
    assert result.success
    reader = open_reader(config)
    yield reader, result
    reader.close()


def rows(con, sql: str) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def test_rl_prompts_holds_only_tasks_a_reward_can_run_on(materialised) -> None:
    con, _ = materialised
    assert rows(con, "SELECT task_id, reason FROM rl_prompts_excluded ORDER BY 1") == [
        (C, "no_repo_dir"),
        (D, "no_fail_to_pass"),
    ]
    assert rows(con, "SELECT task_id, repo_dir FROM rl_prompts ORDER BY 1") == [
        (A, "/repos/rl-a"),
        (B, "/repos/rl-b"),
        (E, "/repos/rl-e"),
    ]
    # C's success is not replayed either: its group could never be judged
    assert rows(con, "SELECT DISTINCT task_id FROM replay_buffer ORDER BY 1") == [(A,), (E,)]


def test_the_rl_prompts_asset_counts_and_names_what_it_left_out(materialised) -> None:
    _, result = materialised
    (mat,) = [
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key.to_user_string() == "rl_prompts"
    ]
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["dagster/row_count"] == 3
    assert meta["excluded_tasks"] == 2
    assert meta["excluded_by_reason"] == {"no_fail_to_pass": 1, "no_repo_dir": 1}
    assert meta["excluded_task_ids"] == [C, D]


def test_buckets_come_from_the_measured_baseline_only(materialised) -> None:
    con, _ = materialised
    assert rows(
        con,
        "SELECT task_id, baseline_success_rate, baseline_samples, baseline_source, baseline_policy, "
        "difficulty_bucket FROM rl_prompts ORDER BY 1",
    ) == [
        (A, 0.5, 2, "rollouts", "v0", "medium"),
        (B, None, 0, None, None, "unmeasured"),
        (E, 0.5, 4, "baseline", "sft", "medium"),  # not v0's 1.0: the measured baseline wins
    ]


def test_frozen_localization_is_carried_into_rl_prompts(materialised) -> None:
    con, _ = materialised
    got = rows(
        con,
        "SELECT task_id, localized_files, localized_from, localization_policy, "
        "CASE WHEN task_id = 'rl__b-1' THEN NULL ELSE prompt_text END FROM rl_prompts ORDER BY 1",
    )
    assert got == [
        # v0's files, not v1's own (z.py); the prompt a BugFixer of v0's run saw with exactly them
        (A, ["a.py", "x.py"], "frozen", "v0", "sys BA0\n\nask BA0"),
        (B, ["b.py"], "gold", None, None),
        (E, ["e.py"], "gold", None, "sys SE0\n\nask SE0"),
    ]
    b_prompt = con.execute(f"SELECT prompt_text FROM rl_prompts WHERE task_id = '{B}'").fetchone()[0]
    assert b_prompt.startswith("Fix the following issue in org/rl (commit c0ffee).")
    assert "Files to edit:\nb.py\n" in b_prompt
