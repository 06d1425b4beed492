"""One reasoning splitter: the RL reward reads a completion exactly as self-play does.

Self-play strips five reasoning-marker styles (``vtforge.selfplay.reasoning``); the RL reward used
to strip only ``<think>``, so an edit drafted inside ``<thinking>`` or Kimi's ``◁think▷`` was applied
by the reward while self-play ignored it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import require_service
from vtforge.gitrepo import commit_all, init_repo
from vtforge.selfplay.parsing import parse_edit
from vtforge.selfplay.reasoning import split_reasoning
from vtforge.selfplay.task import RepoView
from vtforge.trainers.rewards import BanditReward, SandboxReward, answer_text, extract_patch

BUGGY = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
# a wrong fix drafted while thinking: must never be applied
DRAFT = (
    "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a * b\n"
)
ANSWER = "### calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n"
STYLES = {
    "thinking": f"<thinking>Maybe multiply?\n{DRAFT}No: it should add.</thinking>\n",
    "kimi": f"◁think▷Maybe multiply?\n{DRAFT}No: it should add.◁/think▷\n",
    "lone_closer": f"Maybe multiply?\n{DRAFT}No: it should add.</thinking>\n",  # opener in the prompt
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_answer_text_is_self_plays_answer(style: str) -> None:
    completion = STYLES[style] + ANSWER
    assert split_reasoning(completion).answer.strip() == ANSWER.strip()
    assert answer_text(completion) == ANSWER.strip()  # before: the reasoning (and its draft) stayed
    assert extract_patch(completion) is None  # before: the drafted ``a * b`` diff was the patch


@pytest.mark.parametrize("opener,closer", [("<thinking>", "</thinking>"), ("◁think▷", "◁/think▷")])
def test_bandit_reward_reads_the_answer_after_any_marker(opener: str, closer: str) -> None:
    assert BanditReward(arms="a")(f"{opener}zebra{closer}apple", {}) == 1.0  # before: "<" or "◁": 0.0


def test_unterminated_reasoning_leaves_no_answer() -> None:
    completion = "<thinking>still thinking\n" + ANSWER
    assert answer_text(completion) == split_reasoning(completion).answer == ""
    assert BanditReward(arms="<")(completion, {}) == 0.0  # before: the raw "<thinking>" scored 1.0


@pytest.mark.parametrize("style", sorted(STYLES))
def test_rl_reward_applies_the_edit_self_play_parses(cfg, tmp_path: Path, style: str) -> None:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    repo = tmp_path / "calc"
    (repo / "tests").mkdir(parents=True)
    (repo / "calc.py").write_text(BUGGY)
    (repo / "tests" / "test_calc.py").write_text(TEST)
    init_repo(repo)
    base_commit = commit_all(repo, "buggy")
    row = {
        "task_id": "calc-1",
        "repo": str(repo),
        "base_commit": base_commit,
        "fail_to_pass": ["tests/test_calc.py::test_add"],
        "pass_to_pass": [],
    }
    completion = STYLES[style] + ANSWER
    view = RepoView(repo, row["base_commit"])
    selfplay = parse_edit(completion, view.read, view.tree, scope="calc-1")
    assert selfplay.ok and "+    return a + b" in selfplay.diff
    reward = SandboxReward(cfg)
    try:
        assert reward.patch_of(completion, row) == selfplay.diff  # before: the drafted diff
        assert reward(completion, row) == 1.0  # before: 0.0, the draft multiplies
    finally:
        reward.close()
