"""A small real git repository with a bug, its gold patch and a test patch (built in a temp dir)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vtforge.gitrepo import commit_all, git, init_repo

BUGGY = '''"""toycalc: a tiny package with one bug (add subtracts)."""


def add(a, b):
    return a - b


def mul(a, b):
    return a * b


def clamp(value, low, high):
    return max(low, min(value, high))
'''

BASIC_TESTS = """import pytest

from toycalc import clamp, mul


def test_mul():
    assert mul(3, 4) == 12


def test_mul_zero():
    assert mul(0, 7) == 0


@pytest.mark.parametrize("value,expected", [(-1, 0), (5, 5), (11, 10)])
def test_clamp(value, expected):
    assert clamp(value, 0, 10) == expected


@pytest.mark.skip(reason="documented as skipped")
def test_skipped():
    raise AssertionError


@pytest.mark.xfail(reason="known", strict=True)
def test_known_failure():
    assert mul(2, 2) == 5
"""

NEW_TESTS = """import pytest

from toycalc import add


def test_add():
    assert add(2, 3) == 5


@pytest.mark.parametrize("a", [0, 1, 2])
def test_add_zero(a):
    assert add(0, a) == a
"""


@dataclass(frozen=True)
class ToyRepo:
    path: Path
    base_commit: str
    gold_patch: str
    test_patch: str

    @property
    def fail_to_pass(self) -> list[str]:
        return [
            "tests/test_add.py::test_add",
            "tests/test_add.py::test_add_zero[1]",
            "tests/test_add.py::test_add_zero[2]",
        ]

    @property
    def pass_to_pass(self) -> list[str]:
        return [
            "tests/test_basic.py::test_mul",
            "tests/test_basic.py::test_mul_zero",
            "tests/test_basic.py::test_clamp[-1-0]",
            "tests/test_basic.py::test_clamp[5-5]",
            "tests/test_basic.py::test_clamp[11-10]",
            "tests/test_basic.py::test_known_failure",
            "tests/test_add.py::test_add_zero[0]",
        ]

    def instance(self, instance_id: str = "toy__toycalc-1") -> dict:
        return {
            "instance_id": instance_id,
            "repo": "toy/toycalc",
            "repo_dir": str(self.path),
            "base_commit": self.base_commit,
            "patch": self.gold_patch,
            "test_patch": self.test_patch,
            "problem_statement": "add() subtracts instead of adding",
            "FAIL_TO_PASS": json.dumps(self.fail_to_pass),
            "PASS_TO_PASS": json.dumps(self.pass_to_pass),
            "version": "0.1",
        }


def new_file_patch(path: str, source: str) -> str:
    """A git diff that creates ``path`` with ``source`` (which ends with a newline)."""
    lines = source.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def make_toy_repo(root: Path) -> ToyRepo:
    repo = root / "toycalc-repo"
    (repo / "toycalc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "toycalc" / "__init__.py").write_text(BUGGY)
    (repo / "tests" / "__init__.py").write_text("")
    (repo / "tests" / "test_basic.py").write_text(BASIC_TESTS)
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "toycalc"\nversion = "0.1"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    )
    init_repo(repo)
    base = commit_all(repo, "toycalc with a bug")
    (repo / "toycalc" / "__init__.py").write_text(BUGGY.replace("return a - b", "return a + b"))
    gold = git(repo, "diff")
    git(repo, "checkout", "-q", "--", ".")
    (repo / "tests" / "test_add.py").write_text(NEW_TESTS)
    git(repo, "add", "-N", "tests/test_add.py")
    test_patch = git(repo, "diff")
    git(repo, "reset", "-q")
    (repo / "tests" / "test_add.py").unlink()
    git(repo, "commit", "-q", "--allow-empty", "-m", "a later commit the task does not start from")
    return ToyRepo(repo, base, gold, test_patch)
