"""Diff surgery against real git: the inverse undoes, GitHub file entries apply."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.tasks.toypkg import write
from vtforge.gitrepo import git
from vtforge.tasks.diffs import changed_paths, github_file_diff, is_test_path, partition, reverse


def two_commits(repo: Path) -> tuple[str, str]:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(
        repo,
        {
            "a.py": "x = 1\n-- not a header\nz = 3\nlast",
            "tests/test_a.py": "def test(): pass\n",
            "old.py": "gone = True\n",
        },
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    write(repo, {"a.py": "x = 2\n--- also not a header\nz = 3\nlast\n", "new.py": "n = 1\n"})
    (repo / "old.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "two")
    return git(repo, "rev-parse", "HEAD~1").strip(), git(repo, "rev-parse", "HEAD").strip()


def test_reverse_is_exactly_git_inverse(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    old, new = two_commits(repo)
    forward = git(repo, "diff", old, new)
    backward = git(repo, "diff", new, old)
    assert reverse(forward) == backward
    assert reverse(reverse(forward)) == forward


def test_partition_and_paths(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    two_commits(repo)
    write(repo, {"tests/test_a.py": "def test(): assert True\n", "a.py": "x = 5\n"})
    diff = git(repo, "diff")
    source, tests = partition(diff)
    assert changed_paths(source) == ["a.py"]
    assert changed_paths(tests) == ["tests/test_a.py"]
    assert is_test_path("pkg/tests/helpers.py") and is_test_path("test_x.py") and is_test_path("x_test.py")
    assert not is_test_path("pkg/testing_utils.py") and not is_test_path("docs/test.rst")


def test_github_file_entries_apply_with_git(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    old, _ = two_commits(repo)
    git(repo, "checkout", "-q", old)
    entries = [
        {
            "filename": "a.py",
            "status": "modified",
            "patch": "@@ -1,4 +1,4 @@\n-x = 1\n+x = 2\n -- not a header\n z = 3\n-last\n"
            "\\ No newline at end of file\n+last",
        },
        {"filename": "new.py", "status": "added", "patch": "@@ -0,0 +1 @@\n+n = 1"},
        {"filename": "old.py", "status": "removed", "patch": "@@ -1 +0,0 @@\n-gone = True"},
    ]
    diff = "".join(github_file_diff(e) for e in entries)
    done = subprocess.run(["git", "-C", str(repo), "apply", "-"], input=diff, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (repo / "new.py").read_text() == "n = 1\n"
    assert not (repo / "old.py").exists()
    assert (repo / "a.py").read_text().startswith("x = 2\n")
