"""``policy_promotions`` and the blocking check that keeps ``grpo_job`` from training a rejected policy."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.warehouse.conftest import config_here, emit, make_workspace
from vtforge.schemas import new_event
from vtforge.trainers.gates import GateReport, GateResult
from vtforge.trainers.promotion import promotion_event
from vtforge.warehouse.promotions import start_policy_promoted
from vtforge.warehouse.refresh import refresh

SFT = "sft-20261201T000000Z-aaaa"
GATES = [
    GateResult("localization_accuracy", 0.6, 0.42, False, "rl"),
    GateResult("patch_acceptance", 0.5, 0.7, True),
]


@pytest.fixture
def config(workspace: Path):
    make_workspace(workspace)
    return config_here()


def sft_step(version: str) -> dict:
    payload = {"trainer": "sft", "step": 1, "loss": 1.0, "policy_version": version}
    return new_event("training_step", payload, producer="tests", stage="agentless", run_id=version)


def run_grpo_job(config) -> tuple[bool, set[str], dict]:
    """``grpo_job`` in-process: (run succeeded, assets materialised, check outcomes by name)."""
    from dagster import DagsterInstance

    from vtforge.pipelines.definitions import build_definitions

    job = build_definitions(str(config.files[-1])).resolve_job_def("grpo_job")
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=quiet)
        materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return result.success, materialised, checks


def test_a_rejected_start_policy_blocks_the_grpo_job(config) -> None:
    emit(config, [sft_step(SFT), promotion_event(GateReport(SFT, GATES))])
    refresh(config, exports=False)
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        sql = "SELECT policy_version, decision, passed, current FROM policy_promotions"
        rows = con.execute(sql).fetchall()
        outcome = start_policy_promoted(con)
    assert rows == [(SFT, "rejected", False, True)]
    assert not outcome.passed
    assert outcome.description == (
        f"policy {SFT} rejected: localization_accuracy[rl] 0.420, needs >= 0.600 (short by 0.180)"
    )
    success, materialised, checks = run_grpo_job(config)
    assert checks == {"grpo_start_promoted": False}
    assert "policy_promotions" in materialised and "grpo_policy" not in materialised  # blocked
    assert not success


def test_the_latest_decision_is_current_and_a_promotion_opens_the_gate(config) -> None:
    promoted = GateReport(SFT, [GateResult("localization_accuracy", 0.6, 0.8, True, "rl")])
    emit(config, [sft_step(SFT), promotion_event(GateReport(SFT, GATES))])
    refresh(config, exports=False)
    emit(config, [promotion_event(promoted)])
    refresh(config, exports=False)
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        rows = con.execute("SELECT decision, current FROM policy_promotions ORDER BY occurred_at").fetchall()
        outcome = start_policy_promoted(con)
        undecided = start_policy_promoted(con, "sft-other")
    assert rows == [("rejected", False), ("promoted", True)]
    assert outcome.passed and outcome.description == f"policy {SFT} promoted: every gate passed"
    assert not undecided.passed and "has no promotion decision" in undecided.description


def test_without_an_sft_policy_grpo_starts_from_a_base_model(config) -> None:
    emit(config, [promotion_event(GateReport(SFT, GATES))])
    refresh(config, exports=False)
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        outcome = start_policy_promoted(con)
    assert outcome.passed and outcome.description == "no SFT policy: GRPO starts from a base model"
