"""Git plumbing, the one home for every git command vtforge runs on a task's repository.

Writing: commits with fixed authors and dates, so the same content always has the same commit id
(task ids, base commits and manifests stay stable across rebuilds). Reading: resolve a revision,
list, show and diff files at a commit, and export a commit's tree as plain files (what the sandbox
prepares every candidate from). A core module: it imports nothing of vtforge, so every layer
(the sandbox, the task bank, tests and benches) may use it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "vtforge",
    "GIT_AUTHOR_EMAIL": "vtforge@localhost",
    "GIT_COMMITTER_NAME": "vtforge",
    "GIT_COMMITTER_EMAIL": "vtforge@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+00:00",
}


class GitError(RuntimeError):
    pass


def git(repo: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> str:
    full_env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
    )
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args[:3])} in {repo}: {done.stderr.strip()[-500:]}")
    return done.stdout


def init_repo(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")


def commit_all(repo: Path, message: str) -> str:
    """Commit the whole work tree; returns the commit id."""
    git(repo, "add", "-A", "-f")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def commit_files(repo: Path, parent: str, files: dict[str, bytes], message: str) -> str:
    """A commit on top of ``parent`` with ``files`` replaced, without touching the work tree.

    Uses a private index, so several threads may build commits in the same repository at once.
    """
    with tempfile.NamedTemporaryFile(prefix="vtforge-index-", delete=False) as handle:
        index = handle.name
    try:
        os.unlink(index)
        env = {"GIT_INDEX_FILE": index}
        git(repo, "read-tree", parent, env=env)
        for path, content in sorted(files.items()):
            blob = (
                subprocess.run(
                    ["git", "-C", str(repo), "hash-object", "-w", "--stdin"],
                    input=content,
                    capture_output=True,
                    check=True,
                )
                .stdout.decode()
                .strip()
            )
            mode = _mode_of(repo, parent, path)
            git(repo, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env).strip()
        return git(repo, "commit-tree", tree, "-p", parent, "-m", message).strip()
    finally:
        if os.path.exists(index):
            os.unlink(index)


def _mode_of(repo: Path, commit: str, path: str) -> str:
    out = git(repo, "ls-tree", commit, "--", path).strip()
    return out.split()[0] if out else "100644"


def tag(repo: Path, name: str, commit: str) -> None:
    git(repo, "tag", "-f", name, commit)


def show(repo: Path, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, check=True
    ).stdout


def diff(repo: Path, old: str, new: str, *paths: str) -> str:
    return git(repo, "diff", "--no-color", "--no-ext-diff", "--full-index", old, new, "--", *paths)


def has_commit(repo: Path, rev: str) -> bool:
    try:
        git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
    except GitError:
        return False
    return True


def resolve_commit(repo: Path, rev: str) -> str:
    """The full commit id ``rev`` names; GitError if it names none."""
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise GitError(f"{repo}: cannot resolve commit {rev!r}: {done.stderr.strip()}")
    return done.stdout.strip()


def list_files(repo: Path, commit: str) -> list[str]:
    """Every file path at ``commit``, sorted (NUL-separated by git, so no path is ever quoted)."""
    return sorted(p for p in git(repo, "ls-tree", "-r", "--name-only", "-z", commit).split("\0") if p)


def export_commit(repo: Path, commit: str, target: Path) -> None:
    """The tree of ``commit`` as plain files (no .git) in ``target``, which must not exist yet."""
    target.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "-C", str(repo), "archive", "--format=tar", commit],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    untar = subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, capture_output=True)
    assert archive.stdout is not None
    archive.stdout.close()
    err = archive.stderr.read().decode() if archive.stderr else ""
    if archive.wait() != 0 or untar.returncode != 0:
        raise GitError(f"git archive {commit} failed: {err.strip() or untar.stderr.decode().strip()}")
