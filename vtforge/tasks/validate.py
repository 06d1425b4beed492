"""Measuring tasks in the sandbox: F2P/P2P from real runs, and the gold/empty-patch check.

Every task the bank builds itself (synthesised bugs, commit packs) goes through here, so
FAIL_TO_PASS and PASS_TO_PASS are what the tests did, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtforge.sandbox import grading
from vtforge.sandbox.api import PreparedRepo, RepoSpec, RunRequest, RunResult, Sandbox
from vtforge.tasks.model import Task

FAILING = ("FAILED", "ERROR")


@dataclass
class Verification:
    """The two runs that make a task valid: gold resolves it, the empty patch does not."""

    gold_resolved: bool
    empty_resolved: bool
    gold_status: str
    empty_status: str
    backend: str
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.gold_resolved and not self.empty_resolved

    def to_dict(self) -> dict[str, Any]:
        return {
            "gold_resolved": self.gold_resolved,
            "empty_resolved": self.empty_resolved,
            "gold_status": self.gold_status,
            "empty_status": self.empty_status,
            "backend": self.backend,
        }


def patches_of(*diffs: str) -> list[str]:
    return [d for d in diffs if d and d.strip()]


def resolved_by(task: Task, result: RunResult) -> bool:
    """Whether ``result`` resolves ``task`` (SWE-bench rules, judged on the tests alone)."""
    if result.status != "completed":
        return False
    block = grading.tests_status(task.fail_to_pass, task.pass_to_pass, result.status_map())
    return grading.is_resolved(block)


def prepare(box: Sandbox, repo_dir: str | Path, commit: str, task_id: str | None = None) -> PreparedRepo:
    prepared = box.prepare(RepoSpec(Path(repo_dir), commit, task_id=task_id))
    if not prepared.ok:
        raise RuntimeError(f"sandbox could not prepare {repo_dir}@{commit[:12]}: {prepared.setup_log[-300:]}")
    return prepared


def verify_task(
    box: Sandbox, task: Task, *, timeout_s: float | None = None, empty_result: RunResult | None = None
) -> Verification:
    """Run the gold patch and the empty patch (test_patch applied to both) on the task's base.

    ``empty_result`` reuses a run already made on the base with the test patch only.
    """
    prepared = prepare(box, task.repo_dir, task.base_commit, task.instance_id)
    tests = sorted(set(task.fail_to_pass) | set(task.pass_to_pass))
    env = {str(k): str(v) for k, v in (task.provenance.get("test_env") or {}).items()}
    gold = box.run(
        prepared,
        RunRequest(
            patches=patches_of(task.patch, task.test_patch),
            tests=tests,
            timeout_s=timeout_s,
            label="gold",
            env=env,
        ),
    )
    if empty_result is None:
        empty_result = box.run(
            prepared,
            RunRequest(
                patches=patches_of(task.test_patch), tests=tests, timeout_s=timeout_s, label="empty", env=env
            ),
        )
    errors = [r.error for r in (gold, empty_result) if r.error]
    return Verification(
        gold_resolved=resolved_by(task, gold),
        empty_resolved=resolved_by(task, empty_result),
        gold_status=gold.status,
        empty_status=empty_result.status,
        backend=box.name,
        errors=[e for e in errors if e],
    )


def split_outcomes(
    before: RunResult | None, after: RunResult, baseline_passed: set[str] | None = None
) -> tuple[list[str], list[str]]:
    """F2P and P2P from two runs of the same tests.

    ``before`` is the broken state, ``after`` the fixed one. With ``before`` None (synthesis),
    ``after`` is the broken run and ``baseline_passed`` the clean one: F2P = passed clean and
    failed broken; P2P = passed both.
    """
    if before is None:
        assert baseline_passed is not None
        f2p = sorted(n for n, t in after.tests.items() if n in baseline_passed and t.status in FAILING)
        p2p = sorted(n for n in after.passed() if n in baseline_passed)
        return f2p, p2p
    fixed = after.passed()
    f2p = sorted(n for n in fixed if n not in before.passed() and "::" in n)
    p2p = sorted(n for n in fixed if n in before.passed())
    return f2p, p2p


@dataclass
class ChangeMeasure:
    """A real fix measured on its base: tests before (test patch only) and after (fix + tests)."""

    fail_to_pass: list[str]
    pass_to_pass: list[str]
    before: RunResult
    after: RunResult
    reason: str  # "ok" or why it cannot be a task

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def measure_change(
    box: Sandbox,
    repo_dir: str | Path,
    base_commit: str,
    patch: str,
    test_patch: str,
    tests: list[str],
    *,
    task_id: str | None = None,
    timeout_s: float | None = None,
) -> ChangeMeasure:
    """F2P/P2P of a fix from two sandbox runs of ``tests`` on ``base_commit``."""
    prepared = prepare(box, repo_dir, base_commit, task_id)
    before = box.run(
        prepared, RunRequest(patches=patches_of(test_patch), tests=tests, timeout_s=timeout_s, label="before")
    )
    after = box.run(
        prepared,
        RunRequest(patches=patches_of(patch, test_patch), tests=tests, timeout_s=timeout_s, label="after"),
    )
    f2p, p2p = split_outcomes(before, after)
    if after.status != "completed":
        reason = f"fix_run_{after.status}"
    elif before.status not in ("completed", "invalid"):
        reason = f"test_run_{before.status}"
    elif not f2p or (before.status == "completed" and set(f2p) <= before.passed()):
        reason = "no_fail_to_pass"
    else:
        reason = "ok"
    return ChangeMeasure(f2p, p2p, before, after, reason)
