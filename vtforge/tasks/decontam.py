"""Decontamination: nothing that belongs to an eval split may be trained on.

A training task is flagged when its repository is an eval task's repository (by ``owner/name``
or, across namespaces such as ``pypi/x`` and ``owner/x``, by the name alone), when it edits a file
an eval task's patch or test patch edits, or when its gold patch or problem statement is an eval
task's. Flags are recomputed from scratch on every pass (idempotent); a flagged task keeps its
split but is not ``trainable``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from vtforge.tasks.diffs import changed_paths
from vtforge.tasks.model import Task

FLAG_PREFIXES = ("eval-repo:", "eval-file:", "eval-duplicate:")


def _repo_name(repo: str) -> str:
    return repo.rsplit("/", 1)[-1].lower()


def _digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


@dataclass
class DecontamReport:
    total: int = 0
    eval_tasks: int = 0
    flagged: int = 0
    by_flag: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "eval_tasks": self.eval_tasks,
            "flagged": self.flagged,
            "trainable": self.total - self.flagged - self.eval_tasks,
            "by_flag": dict(sorted(self.by_flag.items())),
        }


@dataclass
class EvalIndex:
    repos: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    files: set[tuple[str, str]] = field(default_factory=set)
    content: dict[str, str] = field(default_factory=dict)  # digest -> eval instance id

    @classmethod
    def of(cls, eval_tasks: Iterable[Task]) -> EvalIndex:
        index = cls()
        for task in eval_tasks:
            index.repos.add(task.repo.lower())
            name = _repo_name(task.repo)
            index.names.add(name)
            for path in changed_paths(task.patch) + changed_paths(task.test_patch):
                index.files.add((name, path))
            for text in (task.patch, task.problem_statement):
                if text.strip():
                    index.content.setdefault(_digest(text), task.instance_id)
        return index


def flags_for(task: Task, index: EvalIndex) -> list[str]:
    flags: list[str] = []
    name = _repo_name(task.repo)
    if task.repo.lower() in index.repos or name in index.names:
        flags.append(f"eval-repo:{name}")
    for path in sorted(set(changed_paths(task.patch) + changed_paths(task.test_patch))):
        if (name, path) in index.files:
            flags.append(f"eval-file:{name}/{path}")
    for text in (task.patch, task.problem_statement):
        hit = index.content.get(_digest(text)) if text.strip() else None
        if hit and hit != task.instance_id:
            flags.append(f"eval-duplicate:{hit}")
    return sorted(set(flags))


def decontaminate(tasks: Iterable[Task], universe: Iterable[Task]) -> tuple[list[Task], DecontamReport]:
    """``tasks`` with their eval flags recomputed against the eval tasks of ``universe``."""
    tasks = list(tasks)
    index = EvalIndex.of(t for t in universe if t.split == "eval")
    report = DecontamReport(total=len(tasks))
    out: list[Task] = []
    for task in tasks:
        kept = [f for f in task.contamination_flags if not f.startswith(FLAG_PREFIXES)]
        if task.split == "eval":
            report.eval_tasks += 1
            out.append(task.replace(contamination_flags=kept) if kept != task.contamination_flags else task)
            continue
        new = flags_for(task, index)
        if new:
            report.flagged += 1
            report.by_flag.update(f.split(":", 1)[0] for f in new)
        flags = sorted(set(kept + new))
        out.append(
            task if flags == list(task.contamination_flags) else task.replace(contamination_flags=flags)
        )
    return out, report


def training_tasks(tasks: Iterable[Task]) -> list[Task]:
    """What may be trained on: train split, no flag."""
    return [t for t in tasks if t.trainable]
