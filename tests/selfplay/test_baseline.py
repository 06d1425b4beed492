"""`vtforge tasks baseline`: a policy's measured success per task lands as events and buckets the task."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.cli import invoke
from tests.sandbox.toyrepo import make_toy_repo
from vtforge.config import load_config
from vtforge.fixtures.completions import records_for_task
from vtforge.selfplay.task import as_selfplay_task
from vtforge.tasks.events import task_event
from vtforge.tasks.model import Task
from vtforge.transport import sink_from_config
from vtforge.warehouse.refresh import refresh

pytestmark = [pytest.mark.slow, pytest.mark.bwrap]

HARD, EASY = "toy__toycalc-hard", "toy__toycalc-easy"


def _records(task, plan: list[str]) -> list[dict]:
    """Recorded completions: the localizer's, then one BugFixer answer per ``plan`` entry (gold | wrong)."""
    recorded = records_for_task(task, patches=40, tests=0)
    answer = {}
    for r in recorded:
        if r["role"] == "bugfixer":
            answer.setdefault(r["labels"]["kind"], r["completion"])
    out = [r for r in recorded if r["role"] == "localizer"]
    out += [
        {"task_id": task.task_id, "role": "bugfixer", "sample_index": i, "completion": answer[kind]}
        for i, kind in enumerate(plan)
    ]
    return out


def test_baseline_samples_bucket_each_task_by_its_measured_rate(workspace: Path, tmp_path: Path) -> None:
    toy = make_toy_repo(tmp_path / "toy")
    instances = [toy.instance(HARD), toy.instance(EASY)]
    tasks_file = tmp_path / "tasks.jsonl"
    tasks_file.write_text("".join(json.dumps(i) + "\n" for i in instances))
    hard, easy = (as_selfplay_task(i) for i in instances)
    replay_file = tmp_path / "recorded.jsonl"
    records = _records(hard, ["gold"] + ["wrong"] * 9) + _records(easy, ["gold"] * 8 + ["wrong"] * 2)
    replay_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    cfg = load_config()
    with sink_from_config(cfg, producer="tests") as sink:  # the bank registers its tasks
        sink.emit_many(task_event(Task.from_swebench(i), "toy") for i in instances)

    result = invoke(
        *("tasks", "baseline", "--policy", "sft-x", "--samples", "10"),
        *("--tasks", str(tasks_file), "--replay", str(replay_file), "--run-id", "baseline-test"),
    )
    assert result.exit_code == 0, result.output
    assert "baseline of sft-x" in result.stdout

    refresh(cfg, exports=False)
    con = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    got = con.execute(
        "SELECT task_id, baseline_success_rate, baseline_samples, baseline_source, baseline_policy, "
        "difficulty_bucket FROM rl_prompts ORDER BY task_id"
    ).fetchall()
    stages = con.execute("SELECT DISTINCT stage::VARCHAR, run_id FROM rollouts").fetchall()
    con.close()
    # 1 of 10 resolved is exactly 0.10, not more: hard; 8 of 10 is easy (>= 0.70)
    assert got == [
        (EASY, 0.8, 10, "baseline", "sft-x", "easy"),
        (HARD, 0.1, 10, "baseline", "sft-x", "hard"),
    ]
    assert stages == [("eval", "baseline-test")]
