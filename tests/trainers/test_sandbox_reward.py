"""The GRPO reward through the real local sandbox: a fixing edit earns 1.0, anything else 0.0."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import require_service
from vtforge.gitrepo import commit_all, init_repo
from vtforge.trainers.rewards import SandboxReward, interleaved

BUGGY = "def add(a, b):\n    return a - b\n"
TEST = (
    "from calc import add\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_zero():\n    assert add(0, 0) == 0\n"
)


def _edit(new_line: str) -> str:
    """A SEARCH/REPLACE answer in the format self-play prompts for."""
    return f"### calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n{new_line}\n>>>>>>> REPLACE\n"


@pytest.fixture
def task(tmp_path: Path) -> dict:
    repo = tmp_path / "calc"
    (repo / "tests").mkdir(parents=True)
    (repo / "calc.py").write_text(BUGGY)
    (repo / "tests" / "test_calc.py").write_text(TEST)
    init_repo(repo)
    base_commit = commit_all(repo, "buggy")
    return {
        "task_id": "calc-1",
        "repo": str(repo),
        "base_commit": base_commit,
        "fail_to_pass": ["tests/test_calc.py::test_add"],
        "pass_to_pass": ["tests/test_calc.py::test_zero"],
    }


def test_sandbox_reward_grades_the_edit_by_running_the_tests(cfg, task: dict) -> None:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    reward = SandboxReward(cfg)
    try:
        fix = "<think>minus should be plus</think>\n" + _edit("    return a + b")
        wrong = _edit("    return a * b")
        diff = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n"
        diff += "-    return a - b\n+    return b + a\n"
        assert reward(fix, task) == 1.0
        assert reward(wrong, task) == 0.0  # applies, runs, test_add still fails
        assert reward(diff, task) == 1.0  # a unified diff works too
        assert reward("I could not find the bug.", task) == 0.0
        assert reward(fix, {**task, "repo": "owner/not-here"}) is None  # nowhere to run it
        assert reward.many([fix, wrong], [task, task]) == [1.0, 0.0]
        other = {**task, "task_id": "calc-2"}  # run in turn with calc-1's, answered in place
        assert reward.many([fix, wrong, wrong, fix, fix], [task, task, other, other, task]) == [
            1.0,
            0.0,
            0.0,
            1.0,
            1.0,
        ]
        judged = reward.judgements[("calc-1", fix)]
        assert judged.outcome == "resolved" and judged.apply_status == "applied"
        assert judged.patch is not None and "+    return a + b" in judged.patch
        assert reward.judgements[("calc-1", "I could not find the bug.")].outcome == "no_edit"
    finally:
        reward.close()


def test_interleaved_takes_the_tasks_in_turn() -> None:
    assert interleaved(["a", "a", "a", "b", "c", "c"]) == [0, 3, 4, 1, 5, 2]
    assert interleaved([]) == []
    assert sorted(interleaved(["x", "y", "x", "x", "y"])) == [0, 1, 2, 3, 4]
