"""SWE-bench predictions from a model: localize, then one BugFixer patch per instance.

``vtforge eval --model`` runs this before grading, the way SWE-bench's inference scripts write a
predictions file that the harness then evaluates. A task is localized exactly as a self-play round
localizes it (``localize``, shared with ``loop.run_task``), then the BugFixer samples once at the
schedule's first temperature (greedy by default), retried on a parse failure like any rollout. An
answer that never parses predicts the empty patch: the harness counts it as ``empty_patch``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vtforge.selfplay import prompts
from vtforge.selfplay.engines.base import Completion, Engine
from vtforge.selfplay.parsing import parse_edit, parse_localization
from vtforge.selfplay.sampling import Rollout, Schedule, sample
from vtforge.selfplay.task import RepoView, SelfplayTask

OnRollout = Callable[[Rollout], None]


@dataclass(frozen=True)
class Localized:
    """The files a task's localizer picked, per kind, and every rollout it took (with its kind)."""

    files: dict[str, list[str]]
    rollouts: list[tuple[Rollout, str]]


def localize(
    task: SelfplayTask,
    view: RepoView,
    engine: Engine,
    *,
    run_id: str,
    schedule: Schedule,
    limit: int,
    budget: int,
    seed: int = 0,
    on_rollout: OnRollout | None = None,
    recorded: Mapping[tuple[str, int, int], Completion] | None = None,
) -> Localized:
    """Source files (≤ ``limit``) and test files for ``task``: one sample each, retried until parsed
    (``recorded``: the completions a resumed round already has, as ``sample`` takes them)."""
    files: dict[str, list[str]] = {}
    rollouts: list[tuple[Rollout, str]] = []
    for kind in ("source", "test"):
        candidates = view.source_files() if kind == "source" else view.test_files()
        messages = prompts.localization_messages(
            task.problem_statement,
            candidates or view.tree,
            kind=kind,
            limit=limit,
            budget_tokens=budget,
            count=engine.count_tokens,
        )

        def parse(text: str) -> tuple[str, Any]:
            loc = parse_localization(text, view.tree, limit=limit)
            return loc.status, loc

        attempts = sample(
            engine,
            run_id=run_id,
            task_id=task.task_id,
            role="localizer",
            messages=messages,
            n=1,
            parse=parse,
            schedule=schedule,
            first_index=0 if kind == "source" else 1,
            seed=seed,
            on_rollout=on_rollout,
            recorded=recorded,
        )
        rollouts += [(r, kind) for r in attempts]
        good = [r for r in attempts if r.ok]
        files[kind] = list(good[-1].parsed.files) if good else []
    return Localized(files, rollouts)


@dataclass(frozen=True)
class Prediction:
    """One SWE-bench prediction and the rollouts that made it."""

    instance_id: str
    model_name_or_path: str
    model_patch: str
    rollouts: list[Rollout]

    def record(self) -> dict[str, str]:
        return {
            "instance_id": self.instance_id,
            "model_name_or_path": self.model_name_or_path,
            "model_patch": self.model_patch,
        }


def predict(
    task: SelfplayTask,
    engine: Engine,
    *,
    model_name: str,
    run_id: str,
    schedule: Schedule,
    limit: int,
    budget: int,
    seed: int = 0,
    on_rollout: OnRollout | None = None,
) -> Prediction:
    """Localize ``task`` and sample its BugFixer once; the last parsed edit's diff is the patch."""
    view = RepoView(task.repo_dir, task.base_commit)
    localized = localize(
        task,
        view,
        engine,
        run_id=run_id,
        schedule=schedule,
        limit=limit,
        budget=budget,
        seed=seed,
        on_rollout=on_rollout,
    )
    sources = {p: view.read(p) for p in localized.files["source"]}

    def parse(text: str) -> tuple[str, Any]:
        edit = parse_edit(text, view.read, view.tree, scope=task.task_id)
        return edit.status, edit

    fixes = sample(
        engine,
        run_id=run_id,
        task_id=task.task_id,
        role="bugfixer",
        messages=prompts.bugfixer_messages(
            task.problem_statement, sources, budget_tokens=budget, count=engine.count_tokens
        ),
        n=1,
        parse=parse,
        schedule=schedule,
        seed=seed,
        on_rollout=on_rollout,
    )
    good = [r for r in fixes if r.ok]
    patch = good[-1].parsed.diff if good else ""
    return Prediction(task.task_id, model_name, patch, [r for r, _ in localized.rollouts] + fixes)
