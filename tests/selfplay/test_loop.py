"""End to end on a real toy repository: rollouts → matrix → selection → rewards → false positives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.sandbox.toyrepo import ToyRepo
from vtforge.config import load_config
from vtforge.fixtures.completions import records_for_task
from vtforge.sandbox.api import Sandbox
from vtforge.selfplay.catalog import Catalog
from vtforge.selfplay.engines.base import Request
from vtforge.selfplay.engines.replay_engine import ReplayEngine
from vtforge.selfplay.loop import Options, run_task
from vtforge.selfplay.sampling import Schedule
from vtforge.selfplay.selection import Weights
from vtforge.selfplay.task import SelfplayTask
from vtforge.transport import sink_from_config

pytestmark = [pytest.mark.slow, pytest.mark.bwrap]


def _events(report, event_type: str) -> list[dict]:
    return [e for e in report.events if e["envelope"]["event_type"] == event_type]


def test_false_positive_is_catalogued_then_beaten_by_its_counterexample(
    workspace: Path, toy_task: SelfplayTask, box: Sandbox
) -> None:
    cfg = load_config()
    records = records_for_task(toy_task, patches=6, tests=6, fp_prone=True)
    kinds = {r["labels"]["kind"] for r in records if r["role"] == "testwriter"}
    assert "good_test" not in kinds and "weak_test" in kinds  # only weak tests: a false positive waits
    catalog = Catalog(cfg.data_dir)
    reports = []
    with sink_from_config(cfg, producer="test") as sink:
        for round_index in (1, 2):
            opts = Options(
                patches=6,
                tests=6,
                run_id=f"fp-r{round_index}",
                policy_version="recorded",
                round_index=round_index,
                synthesis=False,
            )
            report = run_task(
                toy_task,
                ReplayEngine(records),
                box,
                opts,
                schedule=Schedule(0.0, 1.0, 2, 64),
                weights=Weights(),
                catalog=catalog,
            )
            sink.emit_many(report.events)  # every event validates against its schema here
            reports.append(report)
    first, second = reports

    # round 1: the wrong fix (more votes, same test results) is selected and is a false positive
    assert first.selected_resolved is False
    (fp,) = first.false_positives
    assert fp.patch_id == first.selected and fp.reason == "selected"
    assert fp.counterexample_test in toy_task.fail_to_pass
    assert catalog.counterexamples(toy_task.task_id) == [fp.counterexample_test]
    cx = [e for e in _events(first, "test_proposed") if e["is_counterexample"]]
    assert cx and cx[0]["test_names"] == [fp.counterexample_test]

    # round 2: the counterexample is injected, the gold-equivalent patch wins, nothing is catalogued
    assert second.selected_resolved is True and not second.false_positives
    assert any(t.startswith("cx") for t in second.matrix.valid)

    # rewards are outcome only: 1 exactly for rollouts whose patch resolves
    # (a sample with no parseable patch is rewarded 0 with its rollout as the subject)
    rewards = {e["rollout_id"]: e for e in _events(first, "reward_assigned")}
    for r in first.rollouts:
        if r.role != "bugfixer":
            continue
        reward = rewards[r.rollout_id]
        assert reward["subject_kind"] == ("patch" if r.ok else "rollout")
        resolved = r.ok and first.matrix.rows[r.parsed.key].resolved
        assert reward["reward"] == (1.0 if resolved else 0.0)
        if r.completion.labels.get("kind") == "gold" and r.ok:
            assert reward["reward"] == 1.0
        if r.completion.labels.get("kind") == "wrong" and r.ok:
            assert reward["reward"] == 0.0
    writers = {r.rollout_id for r in first.rollouts if r.role == "testwriter"}
    test_rewards = [e for e in _events(first, "reward_assigned") if e["rollout_id"] in writers]
    assert len(test_rewards) == len(writers)
    assert all(e["subject_kind"] in ("test", "rollout") for e in test_rewards)
    assert {e["outcome"] for e in test_rewards} <= {"fails_before_passes_after", "not_discriminating"}
    assert any(e["reward"] == 1.0 for e in test_rewards)  # weak tests do fail before and pass after

    # the archive: one execution per unique patch plus base and gold, with the whole score table
    executions = _events(first, "execution_result")
    assert len(executions) == len(first.matrix.rows) + 2
    (weighted,) = [e for e in _events(first, "selection_decided") if e["method"] == "weighted"]
    assert {s["patch_id"] for s in weighted["scores"]} == set(first.patches)
    assert [s["rank"] for s in weighted["scores"]] == list(range(1, len(first.patches) + 1))
    assert all(e["envelope"]["synthetic"] for e in _events(first, "rollout"))

    # the landing zone holds all of it
    con = duckdb.connect()
    landing = cfg.landing_dir
    counts = {
        t: con.execute(f"SELECT count(*) FROM read_parquet('{landing}/{t}/**/*.parquet')").fetchone()[0]
        for t in (
            "rollout",
            "patch_proposed",
            "test_proposed",
            "execution_result",
            "reward_assigned",
            "selection_decided",
            "localization_predicted",
        )
    }
    assert all(counts.values()), counts

    # the warehouse rebuilds it: counterexamples are visible, and the rollouts replay from it
    from vtforge.warehouse.refresh import refresh

    refresh(cfg, exports=False)
    db = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    try:
        (n_cx,) = db.execute("SELECT count(*) FROM tests WHERE is_counterexample").fetchone()
        (n_sel,) = db.execute("SELECT count(*) FROM selections").fetchone()
    finally:
        db.close()
    assert n_cx >= 1 and n_sel >= 2
    replayed = ReplayEngine.from_warehouse(cfg.duckdb_path)
    original = next(
        r for r in first.rollouts if r.role == "bugfixer" and r.sample_index == 0 and not r.retry_index
    )
    (again,) = replayed.generate(
        [
            Request(
                messages=[],
                temperature=0.0,
                max_tokens=8,
                task_id=toy_task.task_id,
                role="bugfixer",
                sample_index=0,
            )
        ]
    )
    assert again.text.strip().endswith(original.completion.text.strip()[-40:]) and again.synthetic


def test_cli_runs_a_task_file_with_the_replay_engine(workspace: Path, toy: ToyRepo, box: Sandbox) -> None:
    (workspace / "tasks.jsonl").write_text(json.dumps(toy.instance()) + "\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vtforge",
            "selfplay",
            "--tasks",
            "tasks.jsonl",
            "--engine",
            "replay",
            "--patches",
            "3",
            "--tests",
            "3",
            "--no-synthesis",
            "--run-id",
            "cli",
        ],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    assert "synthetic" in done.stdout and "self-play cli" in done.stdout
    replay = workspace / ".forge" / "selfplay" / "replay" / "tasks.jsonl"
    assert all(json.loads(line)["synthetic"] for line in replay.read_text().splitlines())
    rollouts = list((workspace / ".forge" / "landing" / "rollout").rglob("*.parquet"))
    assert rollouts

    bad = subprocess.run(
        [sys.executable, "-m", "vtforge", "selfplay", "--tasks", "missing.jsonl"],
        cwd=workspace,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "missing.jsonl" in bad.stderr
