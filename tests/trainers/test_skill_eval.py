"""Skill evaluations on a held-out suite: exact metrics, events → warehouse rows, decontamination, CLI."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import duckdb
import pytest

from tests.sandbox.toyrepo import ToyRepo, make_toy_repo
from tests.support import require_service
from tests.trainers.conftest import write_levers

T1, T2 = "toy__toycalc-1", "toy__toycalc-2"


@pytest.fixture
def toy(tmp_path: Path) -> ToyRepo:
    return make_toy_repo(tmp_path / "toy")


@pytest.fixture
def bwrap() -> None:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")


def _suite_file(workspace: Path, toy: ToyRepo, ids: list[str]) -> Path:
    path = workspace / "suite.jsonl"
    path.write_text("".join(json.dumps(toy.instance(i)) + "\n" for i in ids))
    return path


def _ws(workspace: Path, extra: str) -> None:
    write_levers(workspace, extra + "\n[forge.sandbox]\ntimeout_s = 120.0\n")


def _cfg(workspace: Path):
    from vtforge.config import load_config

    return load_config(cwd=workspace)


def _pick(records: list[dict], role: str, kind: str) -> str:
    return next(r["completion"] for r in records if r["role"] == role and r["labels"]["kind"] == kind)


def _controlled(task, *, source_files: str | None, fixes: list[str], tests: list[str]) -> list[dict]:
    """Recorded answers: localization (the recorded one, or ``source_files``), then the named kinds."""
    from vtforge.fixtures.completions import records_for_task

    recorded = records_for_task(task, patches=40, tests=40)
    localizer = [r for r in recorded if r["role"] == "localizer"]
    if source_files is not None:
        localizer = [{**localizer[0], "completion": source_files}, *localizer[1:]]
    out = list(localizer)
    out += [
        {
            "task_id": task.task_id,
            "role": "bugfixer",
            "sample_index": i,
            "completion": _pick(recorded, "bugfixer", k),
        }
        for i, k in enumerate(fixes)
    ]
    out += [
        {
            "task_id": task.task_id,
            "role": "testwriter",
            "sample_index": i,
            "completion": _pick(recorded, "testwriter", k),
        }
        for i, k in enumerate(tests)
    ]
    return out


def test_metrics_are_the_recipe_metrics_of_a_controlled_round(workspace: Path, toy: ToyRepo, bwrap) -> None:
    from vtforge.sandbox.api import open_sandbox
    from vtforge.selfplay.engines.replay_engine import ReplayEngine
    from vtforge.selfplay.task import as_selfplay_task
    from vtforge.trainers.skill_eval import METRICS, evaluate_policy
    from vtforge.trainers.suites import load_suite

    suite_file = _suite_file(workspace, toy, [T1, T2])
    _ws(workspace, f'[forge.eval]\nsamples = 2\n\n[forge.eval.suites]\ntoy = "{suite_file}"\n')
    cfg = _cfg(workspace)
    suite = load_suite(cfg, "toy")
    assert suite.task_ids == [T1, T2] and not suite.dropped
    one, two = (as_selfplay_task(toy.instance(i)) for i in (T1, T2))
    # T1: right files; the gold fix and a wrong one; a test that fails before and passes after, a bad one
    # T2: a wrong file; an answer without an edit and a wrong fix; two bad tests
    records = _controlled(one, source_files=None, fixes=["gold", "wrong"], tests=["good_test", "bad_test"])
    records += _controlled(
        two, source_files="tests/test_basic.py", fixes=["malformed", "wrong"], tests=["bad_test"] * 2
    )
    emitted: list[dict] = []
    with open_sandbox(cfg) as box:
        result = evaluate_policy(
            cfg, suite, ReplayEngine(records), box, emitted.append, policy_version="p1", run_id="ev-1"
        )
    # localization: 1 of 2 source localizations found every gold file; acceptance: 3 of 4 BugFixer
    # samples applied (the one without an edit counts against it); resolve rate: 1 of 3 judged
    # proposals resolves; fail-before-fix: 1 of 2 sampled tasks has a test failing before, passing after
    assert result.metrics == {
        "localization_accuracy": (0.5, 2),
        "patch_acceptance": (0.75, 4),
        "fail_before_fix_task_rate": (0.5, 2),
        "resolve_rate": (pytest.approx(1 / 3), 3),
    }
    assert [(t.task_id, t.resolved, t.applied) for t in result.tasks] == [(T1, True, True), (T2, False, True)]
    kinds = [e["envelope"]["event_type"] for e in emitted]
    assert kinds == ["evaluation_result"] * 2 + ["skill_evaluation"] * len(METRICS)
    graded = {e["instance_id"]: e for e in emitted if e["envelope"]["event_type"] == "evaluation_result"}
    assert {(k, e["policy_version"], e["split"], e["resolved"]) for k, e in graded.items()} == {
        (T1, "p1", "toy", True),
        (T2, "p1", "toy", False),
    }
    metrics = {e["metric"]: (e["value"], e["n"], e["mode"], e["step"], e["suite"]) for e in emitted[2:]}
    assert metrics["patch_acceptance"] == (0.75, 4, "agentless", 0, "toy")
    assert (result.folder / "logs" / "run_evaluation" / "ev-1" / "p1" / T1 / "report.json").is_file()


def _held_task(instance_id: str, repo: str, path: str, statement: str):
    from vtforge.tasks.model import Task

    patch = f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-x = 0\n+x = 1\n"
    return Task(
        instance_id=instance_id,
        repo=repo,
        base_commit="abc",
        problem_statement=statement,
        patch=patch,
        fail_to_pass=["tests/test_x.py::test_x"],
    )


def test_suite_is_decontaminated_against_the_training_rows(workspace: Path) -> None:
    from vtforge.fixtures.warehouse import build_warehouse
    from vtforge.tasks.bank import save_slice
    from vtforge.tasks.manifest import slice_hash
    from vtforge.trainers.suites import load_suite

    _ws(workspace, '[forge.eval.suites]\nheld = "held"\n')
    cfg = _cfg(workspace)
    a = _held_task("A", "acme/alpha", "alpha/a.py", "issue A")
    b = _held_task("B", "acme/beta", "beta/b.py", "issue B")
    c = _held_task("C", "acme/gamma", "gamma/c.py", "issue C")
    d = _held_task("D", "acme/epsilon", "epsilon/d.py", "issue D")
    e = _held_task("E", "acme/delta", "delta/e.py", "issue E")
    t = _held_task("T", "acme/delta", "delta/t.py", "issue T").replace(patch=d.patch)  # D's fix, E's repo
    save_slice(cfg, "held", [a, b, c, d, e])
    save_slice(cfg, "train-bank", [t])
    build_warehouse(cfg.duckdb_path, sft=4)
    con = duckdb.connect(str(cfg.duckdb_path))
    con.execute("INSERT INTO sft_examples (example_id, task_id) VALUES ('x1', 'C'), ('x2', 'T')")
    con.execute("INSERT INTO rl_prompts (task_id) VALUES ('B')")
    con.close()

    suite = load_suite(cfg, "held")
    assert suite.task_ids == ["A"]
    assert suite.dropped == {
        "B": ["training-row:rl_prompts"],
        "C": ["training-row:sft_examples"],
        "D": ["eval-duplicate:D via T"],
        "E": ["eval-repo:delta via T"],
    }
    manifest = json.loads((workspace / "docs" / "research" / "suites" / "held.json").read_text())
    assert manifest["task_ids"] == ["A"] and manifest["source"] == "slice:held"
    assert manifest["suite_sha256"] == slice_hash([a.replace(split="eval")])
    assert manifest["decontamination"]["dropped"] == 4 and manifest["decontamination"]["kept"] == 1
    assert manifest["decontamination"]["by_flag"] == {"eval-duplicate": 1, "eval-repo": 1, "training-row": 2}
    assert (
        "- E: eval-repo:delta via T" in (workspace / "docs" / "research" / "suites" / "held.md").read_text()
    )

    relaxed = load_suite(cfg.with_lever("eval", "contamination", "duplicate"), "held", manifest=False)
    assert relaxed.task_ids == ["A", "E"] and sorted(relaxed.dropped) == ["B", "C", "D"]


def test_epoch_callback_events_become_warehouse_rows(workspace: Path, toy: ToyRepo, bwrap) -> None:
    from vtforge.fixtures.warehouse import build_warehouse
    from vtforge.trainers.sft import SftOptions, run_sft
    from vtforge.trainers.skill_eval import METRICS
    from vtforge.warehouse.refresh import refresh

    suite = _suite_file(workspace, toy, [T1])
    _ws(workspace, f'[forge.eval]\nsamples = 1\nmax_new_tokens = 8\n\n[forge.eval.suites]\ntoy = "{suite}"\n')
    cfg = _cfg(workspace)
    build_warehouse(cfg.duckdb_path, sft=8)
    summary = run_sft(cfg, SftOptions(max_steps=2, eval_suite="toy"))
    refresh(cfg, exports=False)
    con = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    skill = con.execute(
        "SELECT evaluation_run_id, step, metric, n, suite, mode, policy_version FROM skill_evaluations "
        "ORDER BY step, metric"
    ).fetchall()
    graded = con.execute(
        "SELECT task_id, policy_version, split, model, stage FROM evaluations ORDER BY model"
    ).fetchall()
    con.close()
    version = summary["policy_version"]
    assert summary["steps"] == 2
    # one evaluation per epoch (two epochs of one packed step each); the end of training is the end
    # of the last epoch, so it is not measured twice
    steps = sorted({row[1] for row in skill})
    assert steps == [1, 2]
    assert len(skill) == len(METRICS) * len(steps)
    assert {(r[4], r[5], r[6]) for r in skill} == {("toy", "agentless", version)}
    assert sorted({r[2] for r in skill}) == sorted(METRICS)
    # the tiny random model writes no edit: its single BugFixer sample is judged against it
    assert {(r[1], r[2], r[3]) for r in skill if r[2] == "patch_acceptance"} == {
        (1, "patch_acceptance", 1),
        (2, "patch_acceptance", 1),
    }
    assert graded == [(T1, version, "toy", f"{version}@step-{s}", "eval") for s in steps]


def _vtforge(monkeypatch: pytest.MonkeyPatch, capsys, *args: str) -> tuple[int, str]:
    """The real entry point (one-line errors on stderr, real exit codes): (code, stderr lines)."""
    from vtforge.cli import main

    monkeypatch.setattr(sys, "argv", ["vtforge", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0), capsys.readouterr().err.strip()


def test_cli_errors_are_one_line_naming_the_field_and_file(
    workspace: Path, toy: ToyRepo, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    suite = _suite_file(workspace, toy, [T1])
    _ws(workspace, f'[forge.eval.suites]\ntoy = "{suite}"\nlost = "missing.jsonl"\n')
    code, err = _vtforge(monkeypatch, capsys, "evaluate", "--suite", "nope", "--policy", "p")
    assert code == 1 and len(err.splitlines()) == 1
    assert "forge.eval.suites has no suite 'nope' (vtcode.toml)" in err and "known: lost, toy" in err
    code, err = _vtforge(monkeypatch, capsys, "evaluate", "--suite", "lost", "--policy", "p")
    assert code == 1 and len(err.splitlines()) == 1
    assert f"forge.eval.suites.lost: file not found: {workspace / 'missing.jsonl'} (vtcode.toml:" in err
    code, err = _vtforge(monkeypatch, capsys, "evaluate", "--policy", "p")
    assert code == 1 and "no suite given and forge.eval.default_suite is not set (vtcode.toml" in err
    code, err = _vtforge(monkeypatch, capsys, "evaluate", "--suite", "toy", "--policy", "no-such-policy")
    assert code == 1 and len(err.splitlines()) == 1
    assert "--policy no-such-policy: not a training run under" in err
    from vtforge.fixtures.warehouse import build_warehouse

    build_warehouse(_cfg(workspace).duckdb_path, sft=4)
    code, err = _vtforge(monkeypatch, capsys, "train", "sft", "--eval-suite", "nope", "--max-steps", "1")
    assert code == 1 and len(err.splitlines()) == 1
    assert "--eval-suite: forge.eval.suites has no suite 'nope' (vtcode.toml)" in err


def test_grpo_measures_the_policy_once_at_the_end(workspace: Path, toy: ToyRepo, bwrap) -> None:
    from vtforge.fixtures.warehouse import build_warehouse
    from vtforge.trainers.grpo import GrpoOptions, run_grpo
    from vtforge.trainers.skill_eval import METRICS

    suite = _suite_file(workspace, toy, [T1])
    _ws(workspace, f'[forge.eval]\nsamples = 1\nmax_new_tokens = 8\n\n[forge.eval.suites]\ntoy = "{suite}"\n')
    cfg = _cfg(workspace)
    build_warehouse(cfg.duckdb_path, rl={"medium": 1})
    summary = run_grpo(cfg, GrpoOptions(max_steps=1, reward="bandit", eval_suite="toy"))
    glob = str(cfg.landing_dir / "skill_evaluation" / "*" / "*.parquet")
    rows = duckdb.sql(f"SELECT policy_version, step, metric FROM '{glob}' ORDER BY metric").fetchall()
    # GRPO's stream never ends an epoch before max_steps: the end of training is measured, once
    assert rows == [(summary["policy_version"], 1, m) for m in sorted(METRICS)]


def test_rows_of_another_split_are_not_training_rows() -> None:
    """An eval-split slice registered in the warehouse (rl_prompts of split eval) stays evaluable."""
    import duckdb

    from vtforge.trainers.suites import training_task_ids

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE rl_prompts AS SELECT * FROM (VALUES ('a', 'train'), ('b', 'eval'), ('c', NULL)) "
        "t(task_id, split)"
    )
    con.execute("CREATE TABLE replay_buffer AS SELECT 'd' AS task_id")  # no split column: all rows count
    assert training_task_ids(con) == {"rl_prompts": {"a", "c"}, "replay_buffer": {"d"}}


def test_the_agentic_mode_plays_a_tool_loop_and_grades_its_final_patch(
    workspace: Path, toy: ToyRepo, bwrap
) -> None:
    """READ, EDIT, TEST, DONE on T1 (the gold fix: resolved); on T2 a turn with no action, then a
    wrong fix and the budget runs out (applied, not resolved)."""
    from vtforge.fixtures.completions import records_for_task
    from vtforge.sandbox.api import open_sandbox
    from vtforge.sandbox.patches import files_in_patch
    from vtforge.selfplay.agent import run_agent
    from vtforge.selfplay.engines.replay_engine import ReplayEngine
    from vtforge.selfplay.task import as_selfplay_task
    from vtforge.trainers.skill_eval import evaluate_policy
    from vtforge.trainers.suites import load_suite

    suite_file = _suite_file(workspace, toy, [T1, T2])
    _ws(workspace, f'[forge.eval]\nagent_turns = 3\n\n[forge.eval.suites]\ntoy = "{suite_file}"\n')
    cfg = _cfg(workspace)
    suite = load_suite(cfg, "toy")
    one, two = (as_selfplay_task(toy.instance(i)) for i in (T1, T2))
    source = files_in_patch(one.gold_patch)[0]
    gold = _pick(records_for_task(one, patches=40, tests=40), "bugfixer", "gold")
    wrong = _pick(records_for_task(two, patches=40, tests=40), "bugfixer", "wrong")
    turns = {
        T1: [f"READ {source}", f"EDIT\n{gold}", "TEST", "DONE"],
        T2: ["Let me think about the bug.", f"EDIT\n{wrong}", "TEST"],
    }
    records = [
        {"task_id": task_id, "role": "agent", "sample_index": i, "completion": text}
        for task_id, texts in turns.items()
        for i, text in enumerate(texts)
    ]
    with open_sandbox(cfg) as box:
        episode = run_agent(one, ReplayEngine(records), box, max_turns=5, max_tokens=64)
        emitted: list[dict] = []
        result = evaluate_policy(
            cfg, suite, ReplayEngine(records), box, emitted.append, policy_version="p1", mode="agentic"
        )
    assert [t.action for t in episode.turns] == ["READ", "EDIT", "TEST", "DONE"] and episode.stop == "done"
    read, edit, test = (t.observation for t in episode.turns[:3])
    assert any(line.strip() for line in read.splitlines()) and read.lstrip().startswith("1  ")
    assert edit == f"edited {source}" and re.fullmatch(r"\d+ passed, 0 failed \(completed\)", test)
    assert episode.edited == [source] and episode.patch.startswith(f"diff --git a/{source} b/{source}")
    assert result.mode == "agentic"
    assert [(t.task_id, t.resolved, t.applied) for t in result.tasks] == [(T1, True, True), (T2, False, True)]
    assert result.metrics == {
        "localization_accuracy": (1.0, 2),  # both edited the gold patch's file
        "patch_acceptance": (1.0, 2),
        "fail_before_fix_task_rate": (None, 0),  # the loop writes no tests
        "resolve_rate": (0.5, 2),
    }
    metrics = [e for e in emitted if e["envelope"]["event_type"] == "skill_evaluation"]
    assert {e["mode"] for e in metrics} == {"agentic"} and len(metrics) == 4
    graded = [e for e in emitted if e["envelope"]["event_type"] == "evaluation_result"]
    assert [(e["instance_id"], e["resolved"], e["envelope"]["attributes"]["mode"]) for e in graded] == [
        (T1, True, "agentic"),
        (T2, False, "agentic"),
    ]
