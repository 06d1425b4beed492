"""The RL reward with a flaky task test: rerun, recorded, and never the test that decides.

``tests/test_flaky.py::test_flaky`` fails on its first run in a workspace and passes on every later
one (a marker file beside it), so under the sandbox's protocol (a fresh workspace per run, failing
tests rerun in a second session on the same workspace) it is flaky on every run with
``flaky_reruns >= 1`` and a plain failure with ``flaky_reruns = 0``: deterministic, not flaky itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import require_service
from tests.trainers.conftest import write_levers
from vtforge.config import ConfigError, load_config
from vtforge.gitrepo import commit_all, init_repo
from vtforge.trainers.rewards import SandboxReward

BUGGY = "def add(a, b):\n    return a - b\n"
TEST = (
    "from calc import add\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_zero():\n    assert add(0, 0) == 0\n"
)
FLAKY = '''from pathlib import Path


def test_flaky():
    """Fails on the first run in a workspace, passes on a rerun there."""
    marker = Path(__file__).with_name(".ran-before")
    first = not marker.exists()
    marker.touch()
    assert not first, "first run in this workspace"
'''
FLAKY_ID = "tests/test_flaky.py::test_flaky"


def _edit(new_line: str) -> str:
    return f"### calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n{new_line}\n>>>>>>> REPLACE\n"


FIX, WRONG = _edit("    return a + b"), _edit("    return a * b")  # a * b keeps add(0, 0) == 0


@pytest.fixture
def repo(tmp_path: Path) -> tuple[str, str]:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    root = tmp_path / "calc"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(BUGGY)
    (root / "tests" / "test_calc.py").write_text(TEST)
    (root / "tests" / "test_flaky.py").write_text(FLAKY)
    init_repo(root)
    return str(root), commit_all(root, "buggy")


def _row(repo: tuple[str, str], f2p: list[str], p2p: list[str]) -> dict:
    return {
        "task_id": "calc-1",
        "repo": repo[0],
        "base_commit": repo[1],
        "fail_to_pass": f2p,
        "pass_to_pass": p2p,
    }


def test_a_flaky_test_is_dropped_from_the_judgement(cfg, repo: tuple[str, str]) -> None:
    reward = SandboxReward(cfg)
    try:
        # flaky in PASS_TO_PASS: the fix is judged by the other tests
        p2p_flaky = _row(repo, ["tests/test_calc.py::test_add"], ["tests/test_calc.py::test_zero", FLAKY_ID])
        assert reward(FIX, p2p_flaky) == 1.0  # before: 0.0, the flaky test's first failure decided
        judged = reward.judgements[("calc-1", FIX)]
        assert (judged.outcome, judged.flaky) == ("resolved", (FLAKY_ID,))
        assert reward(WRONG, p2p_flaky) == 0.0  # test_add still fails: the verdict is not the flake's
        # flaky in FAIL_TO_PASS next to a real one: the real one decides
        f2p_flaky = _row(repo, ["tests/test_calc.py::test_add", FLAKY_ID], ["tests/test_calc.py::test_zero"])
        assert reward.many([FIX, WRONG], [f2p_flaky, f2p_flaky]) == [1.0, 0.0]
        assert reward.flaky_reruns == 1  # forge.selfplay.flaky_reruns, default
    finally:
        reward.close()


def test_a_sample_only_a_flaky_test_could_judge_has_no_reward(cfg, repo: tuple[str, str]) -> None:
    reward = SandboxReward(cfg)
    try:
        only_flaky = _row(repo, [FLAKY_ID], ["tests/test_calc.py::test_zero"])
        # the wrong fix keeps test_zero passing; counting the flaky test's rerun pass would reward it
        assert reward(WRONG, only_flaky) is None  # before: 0.0 from the first failure; out of the group now
        judged = reward.judgements[("calc-1", WRONG)]
        assert (judged.outcome, judged.flaky, judged.apply_status) == ("flaky", (FLAKY_ID,), "applied")
        assert judged.error == f"every FAIL_TO_PASS test is flaky: {FLAKY_ID}"
    finally:
        reward.close()


def test_without_reruns_the_flaky_test_is_not_detected(train_ws: Path, repo: tuple[str, str]) -> None:
    write_levers(train_ws, "\n[forge.selfplay]\nflaky_reruns = 0\n")
    reward = SandboxReward(load_config(cwd=train_ws))
    assert reward.flaky_reruns == 0
    try:
        p2p_flaky = _row(repo, ["tests/test_calc.py::test_add"], ["tests/test_calc.py::test_zero", FLAKY_ID])
        assert reward(FIX, p2p_flaky) == 0.0  # one run, the flake fails it: nothing told it apart
        judged = reward.judgements[("calc-1", FIX)]
        assert (judged.outcome, judged.flaky) == ("unresolved", ())
    finally:
        reward.close()


def test_negative_reruns_are_one_clear_error(train_ws: Path) -> None:
    write_levers(train_ws, "\n[forge.selfplay]\nflaky_reruns = -1\n")
    line = (train_ws / "vtcode.toml").read_text().splitlines().index("flaky_reruns = -1") + 1
    with pytest.raises(ConfigError) as info:
        load_config(cwd=train_ws)
    assert str(info.value) == f"forge.selfplay.flaky_reruns must be >= 0, got -1 (vtcode.toml:{line})"
