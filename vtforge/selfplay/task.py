"""The view of a task self-play needs, from the task bank's ``Task`` or any SWE-bench-shaped record.

Self-play reads the repository straight from git at the base commit (``RepoView``): the tree for
localization and the files for the prompts and for applying SEARCH/REPLACE edits, with no
checkout of its own.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from vtforge.gitrepo import GitError, list_files, show
from vtforge.sandbox.api import RepoSpec
from vtforge.sandbox.grading import test_ids
from vtforge.tasks.diffs import is_test_path


@dataclass(frozen=True)
class SelfplayTask:
    task_id: str
    repo: str
    repo_dir: Path
    base_commit: str
    problem_statement: str
    gold_patch: str
    test_patch: str = ""
    fail_to_pass: tuple[str, ...] = ()
    pass_to_pass: tuple[str, ...] = ()
    setup_commands: tuple[str, ...] = ()
    setup_network: bool = True
    python: str | None = None
    synthetic: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def repo_spec(self) -> RepoSpec:
        return RepoSpec(
            self.repo_dir,
            self.base_commit,
            setup_commands=self.setup_commands,
            setup_network=self.setup_network,
            python=self.python,
            task_id=self.task_id,
        )

    def instance(self) -> dict[str, Any]:
        """The SWE-bench instance ``vtforge.sandbox.grading.grade`` reads."""
        return {
            "instance_id": self.task_id,
            "FAIL_TO_PASS": list(self.fail_to_pass),
            "PASS_TO_PASS": list(self.pass_to_pass),
        }


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj and obj[name] is not None:
                return obj[name]
        elif getattr(obj, name, None) is not None:
            return getattr(obj, name)
    return default


def as_selfplay_task(obj: Any) -> SelfplayTask:
    """Adapt a bank ``Task``, a SWE-bench dict (with ``repo_dir``) or a ``SelfplayTask``."""
    if isinstance(obj, SelfplayTask):
        return obj
    task_id = _get(obj, "task_id", "instance_id")
    repo_dir = _get(obj, "repo_dir")
    if not task_id or not repo_dir:
        raise ValueError("a self-play task needs instance_id (or task_id) and repo_dir")
    setup = _get(obj, "setup_commands", default=()) or ()
    if isinstance(setup, str):
        setup = (setup,)
    return SelfplayTask(
        task_id=str(task_id),
        repo=str(_get(obj, "repo", default="")),
        repo_dir=Path(repo_dir),
        base_commit=str(_get(obj, "base_commit", default="HEAD")),
        problem_statement=str(_get(obj, "problem_statement", default="")),
        gold_patch=str(_get(obj, "patch", "gold_patch", default="")),
        test_patch=str(_get(obj, "test_patch", default="")),
        fail_to_pass=tuple(test_ids(_get(obj, "FAIL_TO_PASS", "fail_to_pass"))),
        pass_to_pass=tuple(test_ids(_get(obj, "PASS_TO_PASS", "pass_to_pass"))),
        setup_commands=tuple(str(c) for c in setup),
        setup_network=bool(_get(obj, "setup_network", default=True)),
        python=_get(obj, "python"),
        synthetic=bool(_get(obj, "synthetic", default=False)),
    )


class RepoView:
    """Files of a repository at one commit, read with git (cached)."""

    def __init__(self, repo_dir: Path, commit: str) -> None:
        self.repo_dir = Path(repo_dir)
        self.commit = commit
        self._cache: dict[str, str | None] = {}

    @cached_property
    def tree(self) -> list[str]:
        try:
            return list_files(self.repo_dir, self.commit)
        except GitError as exc:
            raise ValueError(f"{self.repo_dir}: cannot list {self.commit}: {str(exc)[-300:]}") from None

    @cached_property
    def tree_set(self) -> frozenset[str]:
        return frozenset(self.tree)

    def read(self, path: str) -> str | None:
        if path not in self._cache:
            if path not in self.tree_set:
                self._cache[path] = None
            else:
                try:
                    self._cache[path] = show(self.repo_dir, self.commit, path).decode("utf-8", "replace")
                except subprocess.CalledProcessError:
                    self._cache[path] = None
        return self._cache[path]

    def source_files(self) -> list[str]:
        return [p for p in self.tree if p.endswith(".py") and not is_test_path(p)]

    def test_files(self) -> list[str]:
        return [p for p in self.tree if p.endswith(".py") and is_test_path(p)]
