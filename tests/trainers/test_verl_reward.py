"""verl's reward function over vtforge's own verl export: a fixing completion scores 1.0, others 0.0."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.support import require_service
from tests.trainers.test_sandbox_reward import _edit, task  # noqa: F401  (the calc task fixture)
from vtforge.trainers import verl_reward
from vtforge.warehouse.exports import _VERL


def _verl_row(task: dict) -> dict:  # noqa: F811
    """The task as the verl export writes it (the export's own SELECT over an ``rl_prompts`` row)."""
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE rl_prompts AS SELECT
            $task_id AS task_id, [{'role': 'user', 'content': 'Fix add.'}] AS prompt, $repo AS repo,
            $base_commit AS base_commit, NULL::VARCHAR AS repo_dir, NULL::VARCHAR AS test_patch,
            $f2p::VARCHAR[] AS fail_to_pass, $p2p::VARCHAR[] AS pass_to_pass, 'medium' AS difficulty_bucket,
            'train' AS split, NULL::VARCHAR AS source""",
        {
            "task_id": task["task_id"],
            "repo": task["repo"],
            "base_commit": task["base_commit"],
            "f2p": task["fail_to_pass"],
            "p2p": task["pass_to_pass"],
        },
    )
    cursor = con.execute(_VERL.replace("{verl}", ""))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def test_compute_score_runs_the_sandbox_on_a_verl_row(cfg, task: dict, monkeypatch) -> None:  # noqa: F811
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    monkeypatch.setenv("VTFORGE_CONFIG", str(Path(cfg.files[-1])))
    row = _verl_row(task)
    assert row["data_source"] == "vtforge" and row["ability"] == "swe_bugfix"

    def score(completion: str) -> dict[str, float]:
        return verl_reward.compute_score(
            data_source=row["data_source"],
            solution_str=completion,
            ground_truth=row["reward_model"]["ground_truth"],
            extra_info=row["extra_info"],
        )

    try:
        fixed = score("<think>minus should be plus</think>\n" + _edit("    return a + b"))
        assert fixed == {"score": 1.0, "resolved": 1.0, "infra_failure": 0.0, "flaky": 0.0}
        assert score(_edit("    return a * b"))["score"] == 0.0  # applies, runs, test_add still fails
        assert score("no idea")["score"] == 0.0
        elsewhere = dict(row["extra_info"], repo="owner/not-here")
        lost = verl_reward.compute_score(
            row["data_source"], _edit("    return a + b"), row["reward_model"]["ground_truth"], elsewhere
        )
        assert lost["score"] == 0.0 and lost["infra_failure"] == 1.0  # nowhere to run it
    finally:
        for reward in verl_reward._rewards.values():
            reward.close()
        verl_reward._rewards.clear()


def test_the_task_row_takes_the_tests_from_the_ground_truth() -> None:
    row = verl_reward.task_row(
        '{"fail_to_pass": ["t::a"], "pass_to_pass": []}', {"task_id": "x", "repo": "/r", "base_commit": "c"}
    )
    assert row["fail_to_pass"] == ["t::a"] and row["pass_to_pass"] == [] and row["task_id"] == "x"
    with pytest.raises(ValueError):
        verl_reward.task_row("not json", {})
