"""The leaderboard (newest evaluation per arm, with n and a 95% Wilson interval) and the schedule
that keeps it recurring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.conftest import config_here, emit, make_workspace, materialize_in_process
from vtforge.schemas import new_event

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def config(workspace: Path):
    make_workspace(workspace)
    return config_here()


def metric(run: str, policy: str, arm: str | None, name: str, value: float | None, n: int, minutes: int):
    payload = {
        "evaluation_run_id": run,
        "policy_version": policy,
        "arm": arm,
        "suite": "heldout",
        "mode": "agentless",
        "step": 4,
        "epoch": None,
        "metric": name,
        "value": value,
        "n": n,
    }
    at = T0 + timedelta(minutes=minutes)
    return new_event("skill_evaluation", payload, producer="tests", stage="eval", occurred_at=at)


STREAM = [
    # the staged arm twice: only its newest evaluation is on the board
    metric("old", "grpo-a", "staged", "resolve_rate", 0.0, 4, 0),
    metric("new", "grpo-b", "staged", "resolve_rate", 0.5, 10, 10),
    metric("new", "grpo-b", "staged", "patch_acceptance", 0.75, 4, 10),
    metric("ag", "grpo-c", "agentic", "resolve_rate", 0.0, 4, 5),
    metric("un", "sft-d", None, "resolve_rate", None, 0, 5),  # no arm: its own entry
]


def test_the_leaderboard_has_the_newest_evaluation_of_each_arm_with_its_interval(config) -> None:
    emit(config, STREAM)
    result = materialize_in_process(config)
    assert result.success
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        rows = con.execute(
            "SELECT entry, arm, metric, policy_version, value, n, round(ci_low, 4), round(ci_high, 4) "
            "FROM leaderboard ORDER BY metric, entry"
        ).fetchall()
    assert rows == [
        ("staged", "staged", "patch_acceptance", "grpo-b", 0.75, 4, 0.3006, 0.9544),
        ("agentic", "agentic", "resolve_rate", "grpo-c", 0.0, 4, 0.0, 0.4899),
        ("sft-d", None, "resolve_rate", "sft-d", None, 0, None, None),
        ("staged", "staged", "resolve_rate", "grpo-b", 0.5, 10, 0.2366, 0.7634),
    ]
    shown = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    board = shown["leaderboard"]["leaderboard"].value
    assert "| heldout | resolve_rate | staged | grpo-b | 0.500 [0.237, 0.763] | 10 |" in board
    assert "| heldout | resolve_rate | sft-d | sft-d | — | 0 |" in board


def test_the_schedule_runs_the_evaluation_job_on_the_configured_cron(config, workspace: Path) -> None:
    from dagster import DagsterInstance, DefaultScheduleStatus

    from vtforge.pipelines.definitions import build_definitions

    schedule = build_definitions(str(config.files[-1])).resolve_schedule_def("recurring_evaluation")
    assert schedule.cron_schedule == "0 */6 * * *" and schedule.job_name == "evaluation_job"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    (workspace / "vtcode.toml").write_text(
        (workspace / "vtcode.toml").read_text() + '\n[forge.eval]\nschedule = ""\n'
    )
    off = build_definitions(str(workspace / "vtcode.toml")).resolve_schedule_def("recurring_evaluation")
    assert off.default_status == DefaultScheduleStatus.STOPPED

    # its job, with no policy trained yet: `vtforge evaluate --latest` has nothing to do, and says so
    job = build_definitions(str(config.files[-1])).resolve_job_def("evaluation_job")
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        (event,) = result.get_asset_materialization_events()
    assert result.success
    assert event.materialization.metadata["evaluated"].value is False


def test_a_policys_newest_held_out_evaluation_is_a_stage_of_its_gates(config) -> None:
    """SFT → epoch evaluation → gates: the gates read the held-out metrics (stage 'eval:<suite>')."""
    from vtforge.trainers.gates import evaluate_gates

    emit(
        config,
        [
            metric("e1", "sft-x", None, "localization_accuracy", 1.0, 4, 0),  # older: replaced
            metric("e1", "sft-x", None, "patch_acceptance", 1.0, 8, 0),
            metric("e2", "sft-x", None, "localization_accuracy", 0.5, 4, 10),
            metric("e2", "sft-x", None, "patch_acceptance", 0.625, 8, 10),
            metric("e2", "sft-x", None, "fail_before_fix_task_rate", 0.8, 4, 10),
            metric("e2", "sft-x", None, "resolve_rate", 0.25, 4, 10),  # not a gate
        ],
    )
    assert materialize_in_process(config).success
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        rows = con.execute(
            "SELECT gate, stage, value, comparison, passed FROM curriculum_gates "
            "WHERE policy_version = 'sft-x' ORDER BY gate"
        ).fetchall()
        report = evaluate_gates(con, config.forge.curriculum.gates, "sft-x")
    assert rows == [
        ("fail_before_fix_rate", "eval:heldout", 0.8, ">", False),  # the recipe asks for more than 0.8
        ("localization_accuracy", "eval:heldout", 0.5, ">=", False),
        ("patch_acceptance", "eval:heldout", 0.625, ">=", True),
    ]
    assert [(r.gate, r.stage, r.passed) for r in report.results] == [
        ("localization_accuracy", "eval:heldout", False),
        ("patch_acceptance", "eval:heldout", True),
        ("fail_before_fix_rate", "eval:heldout", False),
    ]
