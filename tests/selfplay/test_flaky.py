"""Flaky tests in the execution matrix: rerun, recorded, and excluded from selection and rewards.

The deliberately flaky tests fail on their first run in a workspace and pass on every later one
(a marker file beside them). The sandbox gives every run a fresh workspace and reruns failing
tests in a second session on that same workspace, so with ``flaky_reruns >= 1`` such a test flips
on every run where its assertion holds, and with ``flaky_reruns = 0`` it is a plain failure:
deterministic under the protocol, not flaky itself.

On the toy task (``add`` subtracts; the gold fix adds, the wrong fix multiplies):

- ``good``: ``add(2, 3) == 5``: fails before, passes with the fix, fails with the wrong fix;
- ``flakyfix``: ``add(2, 3) == 5`` and not the first run: fails before, flaky with the fix (a
  TestWriter would be credited for it if its rerun pass counted);
- ``flakywrong``: ``add(2, 3) == 6`` and not the first run: fails before, flaky with the wrong fix
  (the wrong patch would gain test pass rate if its rerun pass counted).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.sandbox.toyrepo import ToyRepo
from vtforge.config import load_config
from vtforge.fixtures.completions import blocks_text, gold_hunks
from vtforge.sandbox.api import Sandbox
from vtforge.selfplay.diffs import unified_diff
from vtforge.selfplay.engines.replay_engine import ReplayEngine
from vtforge.selfplay.loop import Options, run_task
from vtforge.selfplay.matrix import GOLD, Matrix, MatrixRunner, generated_test
from vtforge.selfplay.sampling import Schedule
from vtforge.selfplay.selection import Candidate, Weights, score_matrix
from vtforge.selfplay.task import RepoView, SelfplayTask, as_selfplay_task
from vtforge.transport import sink_from_config

pytestmark = [pytest.mark.slow, pytest.mark.bwrap]

BASIC = "tests/test_basic.py"
WRONG_LINE = "return a * b"


def _body(name: str, expected: int, flaky: bool) -> str:
    lines = [f"def {name}():", "    from pathlib import Path", "", "    from toycalc import add", ""]
    if flaky:
        lines += [
            f'    marker = Path(__file__).with_name(".{name}-ran")',
            "    first = not marker.exists()",
            "    marker.touch()",
            f'    assert add(2, 3) == {expected} and not first, "first run in this workspace"',
        ]
    else:
        lines.append(f"    assert add(2, 3) == {expected}")
    return "\n".join(lines) + "\n"


BODIES = {
    "good": _body("test_vtf_good", 5, flaky=False),
    "flakyfix": _body("test_vtf_flaky_fix", 5, flaky=True),
    "flakywrong": _body("test_vtf_flaky_wrong", 6, flaky=True),
}
IDS = {"good": "good000000", "flakyfix": "flakyfix00", "flakywrong": "flakywrng0"}


def _tests(view: RepoView) -> list:
    base = view.read(BASIC) or ""
    out = []
    for kind, body in BODIES.items():
        name = body.split("(", 1)[0].removeprefix("def ")
        out.append(generated_test(IDS[kind], BASIC, [name], base + "\n\n" + body))
    return out


def _node(matrix: Matrix, test_id: str) -> str:
    (node,) = next(t.nodes for t in matrix.tests if t.test_id == test_id)
    return node


def _matrix(box: Sandbox, toy: ToyRepo, task: SelfplayTask, reruns: int) -> Matrix:
    view = RepoView(toy.path, toy.base_commit)
    runner = MatrixRunner(box, flaky_reruns=reruns)
    prepared = box.prepare(task.repo_spec())
    matrix = runner.base(prepared, task, _tests(view), view.tree_set)
    wrong = toy.gold_patch.replace("return a + b", WRONG_LINE)
    return runner.rows(prepared, task, matrix, {"fix": toy.gold_patch, "wrong": wrong})


def test_matrix_marks_flaky_tests_and_leaves_them_out_of_scores(
    box: Sandbox, toy: ToyRepo, toy_task: SelfplayTask
) -> None:
    matrix = _matrix(box, toy, toy_task, reruns=1)
    assert matrix.valid == set(IDS.values())  # all three fail on the base commit, run after run
    fix, wrong = matrix.rows["fix"].result.tests, matrix.rows["wrong"].result.tests
    flip_fix, flip_wrong = fix[_node(matrix, "flakyfix00")], wrong[_node(matrix, "flakywrng0")]
    assert (flip_fix.status, flip_fix.flaky, flip_fix.reruns) == ("PASSED", True, 1)  # recorded
    assert (flip_wrong.status, flip_wrong.flaky, flip_wrong.reruns) == ("PASSED", True, 1)
    steady = wrong[_node(matrix, "good000000")]
    assert (steady.status, steady.flaky, steady.reruns) == ("FAILED", False, 1)  # rerun, same outcome
    assert matrix.flaky == {"flakyfix00", "flakywrng0"}
    assert matrix.counted() == {"good000000"} and matrix.informative() == {"good000000"}
    # the wrong patch's rerun pass of flakywrong earns it nothing; the fix loses nothing to flakyfix
    assert (matrix.pass_rate("fix"), matrix.pass_rate("wrong")) == (1.0, 0.0)
    scores = score_matrix([Candidate("fix", 1, 1), Candidate("wrong", 1, 2)], matrix, Weights())
    assert [(s.patch_id, s.test_pass_rate, s.regression_safety) for s in scores] == [
        ("fix", 1.0, 1.0),
        ("wrong", 0.0, 1.0),
    ]
    assert (matrix.rows["fix"].outcome, matrix.rows["wrong"].outcome) == ("resolved", "unresolved")
    payload = matrix.rows["wrong"].result.to_event_payload(execution_id="x", patch_id="wrong")
    by_name = {t["name"]: t for t in payload["tests"]}
    assert by_name[_node(matrix, "flakywrng0")]["flaky"] is True  # what the execution_result event says


def test_without_reruns_the_flaky_tests_go_unnoticed(
    box: Sandbox, toy: ToyRepo, toy_task: SelfplayTask
) -> None:
    matrix = _matrix(box, toy, toy_task, reruns=0)
    runs = [matrix.base, matrix.rows["fix"].result, matrix.rows["wrong"].result]
    assert matrix.gold is not None
    runs.append(matrix.gold.result)
    assert not any(t.flaky or t.reruns for r in runs for t in r.tests.values())
    assert matrix.flaky == set() and matrix.counted() == set(IDS.values())
    assert matrix.rows["fix"].result.tests[_node(matrix, "flakyfix00")].status == "FAILED"
    assert (matrix.pass_rate("fix"), matrix.pass_rate("wrong")) == (1 / 3, 0.0)


FLAKY_TASK_TEST = """from pathlib import Path


def test_flaky():
    marker = Path(__file__).with_name(".task-flaky-ran")
    first = not marker.exists()
    marker.touch()
    assert not first, "first run in this workspace"
"""
FLAKY_TASK_ID = "tests/test_flaky_task.py::test_flaky"


def _flaky_task(toy: ToyRepo, fail_to_pass: list[str]) -> SelfplayTask:
    instance = toy.instance("toy__flaky-1")
    instance["test_patch"] = toy.test_patch + unified_diff("tests/test_flaky_task.py", None, FLAKY_TASK_TEST)
    instance["FAIL_TO_PASS"] = json.dumps(fail_to_pass)
    return as_selfplay_task(instance)


def test_flaky_task_tests_judge_no_row(box: Sandbox, toy: ToyRepo) -> None:
    # next to real FAIL_TO_PASS tests the flaky one is dropped: the fix resolves, the wrong fix does not
    mixed = _matrix(box, toy, _flaky_task(toy, [*toy.fail_to_pass, FLAKY_TASK_ID]), reruns=1)
    assert FLAKY_TASK_ID in mixed.flaky_nodes
    assert (mixed.rows["fix"].resolved, mixed.rows["wrong"].resolved) == (True, False)
    assert FLAKY_TASK_ID not in mixed.rows["wrong"].failing_task_tests
    # alone, it would pass the wrong fix on its rerun: no row is judged (outcome flaky, no reward)
    alone = _matrix(box, toy, _flaky_task(toy, [FLAKY_TASK_ID]), reruns=1)
    assert alone.gold is not None
    outcomes = {k: r.outcome for k, r in alone.rows.items()} | {GOLD: alone.gold.outcome}
    assert outcomes == {"fix": "flaky", "wrong": "flaky", GOLD: "flaky"}
    assert alone.rows["wrong"].resolved is None


def _insert(test_file: str, content: str, body: str) -> str:
    """A TestWriter answer: a SEARCH/REPLACE block appending ``body`` to ``test_file``."""
    tail = content.rstrip("\n").splitlines()[-3:]
    lines = "".join(x + "\n" for x in tail)
    return f"### {test_file}\n<<<<<<< SEARCH\n{lines}=======\n{lines}\n\n{body}>>>>>>> REPLACE"


def test_loop_records_flaky_results_rewards_nobody_and_the_warehouse_counts_them(
    workspace: Path, toy: ToyRepo, toy_task: SelfplayTask, box: Sandbox
) -> None:
    view = RepoView(toy.path, toy.base_commit)
    gold = blocks_text(gold_hunks(toy.gold_patch))
    fixes = [("gold", gold), ("wrong", gold.replace("return a + b", WRONG_LINE))] * 2
    records = [
        {"role": "localizer", "sample_index": 0, "completion": "toycalc/__init__.py", "labels": {}},
        {"role": "localizer", "sample_index": 1, "completion": BASIC, "labels": {}},
        *(
            {"role": "bugfixer", "sample_index": i, "completion": text, "labels": {"kind": kind}}
            for i, (kind, text) in enumerate(fixes[1:])  # wrong, gold, wrong: the wrong fix outvotes
        ),
        *(
            {
                "role": "testwriter",
                "sample_index": i,
                "completion": _insert(BASIC, view.read(BASIC) or "", body),
                "labels": {"kind": kind},
            }
            for i, (kind, body) in enumerate(BODIES.items())
        ),
    ]
    for record in records:
        record.update(task_id=toy_task.task_id, synthetic=True)
    opts = Options(patches=3, tests=3, run_id="flaky", policy_version="flaky-v", synthesis=False)
    report = run_task(
        toy_task, ReplayEngine(records), box, opts, schedule=Schedule(0.0, 1.0, 0, 64), weights=Weights()
    )
    assert report.error is None and report.selected_resolved is True
    events = report.events

    def of(event_type: str) -> list[dict]:
        return [e for e in events if e["envelope"]["event_type"] == event_type]

    kind_of = {r.rollout_id: r.completion.labels["kind"] for r in report.rollouts if r.role == "testwriter"}
    test_rewards = {
        kind_of[e["rollout_id"]]: (e["outcome"], e["reward"])
        for e in of("reward_assigned")
        if e["rollout_id"] in kind_of
    }
    assert test_rewards == {
        "good": ("fails_before_passes_after", 1.0),
        "flakyfix": ("flaky", 0.0),  # before: fails_before_passes_after, 1.0 on its rerun pass
        "flakywrong": ("flaky", 0.0),
    }
    flagged = {
        (e["envelope"]["attributes"]["kind"], t["name"].rsplit("::", 1)[1])
        for e in of("execution_result")
        for t in e["tests"]
        if t["flaky"]
    }
    assert flagged == {("gold", "test_vtf_flaky_fix"), ("candidate", "test_vtf_flaky_fix")} | {
        ("candidate", "test_vtf_flaky_wrong")
    }

    cfg = load_config()
    with sink_from_config(cfg, producer="test") as sink:
        sink.emit_many(events)  # every event validates against its schema here
    from vtforge.warehouse.refresh import refresh

    refresh(cfg, exports=False)
    db = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    try:
        per_test = dict(db.execute("SELECT test_id, flaky FROM test_outcomes").fetchall())
        rates = db.execute("SELECT with_results, flake_rate FROM telemetry_tests").fetchall()
    finally:
        db.close()
    ids = {kind_of[r.rollout_id]: r.parsed.key for r in report.rollouts if r.role == "testwriter"}
    assert {k: per_test[ids[k]] for k in BODIES} == {"good": False, "flakyfix": True, "flakywrong": True}
    assert rates == [(3, 2 / 3)]
    assert opts.flaky_reruns == 1  # forge.selfplay.flaky_reruns, default
