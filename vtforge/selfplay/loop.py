"""One self-play round over one task, from prompts to archived decisions.

The stages (``stages``): localize (source files, test file) → repair (BugFixer × P) → write tests
(TestWriter × T; temperature schedule, retries) → matrix (one base run, one gold run, one run per
unique patch) → select (weighted) → synthesise (optional, over the top-n) → catalogue (false
positives) → outcome rewards and events.

With a ``journal`` the round persists as it goes and a killed round resumes: no model call is made
twice (``journal`` explains how).

Failing tests are rerun ``flaky_reruns`` times in every matrix run; a test flagged flaky anywhere
in the matrix rewards and penalises nobody (``matrix`` explains the protocol): a flaky generated
test earns its TestWriter the outcome ``flaky`` (reward 0), and a patch whose every FAIL_TO_PASS
test is flaky gets the outcome ``flaky`` instead of a verdict.

Prompts fit the window: ``prompt_budget`` = min(``budget_tokens``, the engine's context window) −
the completion's ``max_tokens``, measured with the engine's tokenizer when it has one
(``prompts`` explains the trimming). With ``stream``, every rollout's ``sampled`` event goes out
as soon as its completion is parsed; the task's other events are in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vtforge.sandbox.api import Sandbox
from vtforge.selfplay import stages
from vtforge.selfplay.archive import Archive
from vtforge.selfplay.catalog import Catalog, FalsePositive
from vtforge.selfplay.engines.base import Engine
from vtforge.selfplay.journal import TaskJournal
from vtforge.selfplay.matrix import Matrix
from vtforge.selfplay.options import Options
from vtforge.selfplay.sampling import Rollout, Schedule
from vtforge.selfplay.selection import Score, Weights
from vtforge.selfplay.stages import execution_id, prompt_budget
from vtforge.selfplay.task import RepoView, SelfplayTask

__all__ = ["Options", "TaskReport", "execution_id", "prompt_budget", "run_task"]


@dataclass
class TaskReport:
    task_id: str
    rollouts: list[Rollout] = field(default_factory=list)
    matrix: Matrix | None = None
    scores: list[Score] = field(default_factory=list)
    selected: str | None = None
    synthesized: bool = False
    selected_resolved: bool | None = None
    false_positives: list[FalsePositive] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    patches: dict[str, str] = field(default_factory=dict)
    resumed: bool = False  # an earlier, killed process had begun this round (its journal)


def run_task(
    task: SelfplayTask,
    engine: Engine,
    box: Sandbox,
    opts: Options,
    *,
    schedule: Schedule,
    weights: Weights,
    catalog: Catalog | None = None,
    progress: Callable[[str], None] | None = None,
    stream: Callable[[list[dict[str, Any]]], Any] | None = None,
    on_rollout: Callable[[Rollout], None] | None = None,
    journal: TaskJournal | None = None,
) -> TaskReport:
    """One task's round. ``stream`` receives each new rollout's event as it is sampled (an
    interrupted task keeps them); ``on_rollout`` sees each new rollout (progress); ``journal``
    keeps every stage's output and resumes a killed round from it."""
    rnd = stages.Round(
        task=task,
        engine=engine,
        box=box,
        opts=opts,
        schedule=schedule,
        weights=weights,
        archive=Archive(
            run_id=opts.run_id,
            task_id=task.task_id,
            policy_version=opts.policy_version,
            engine=engine.name,
            round_index=opts.round_index,
        ),
        view=RepoView(task.repo_dir, task.base_commit),
        budget=prompt_budget(opts.budget_tokens, engine, schedule.max_tokens),
        journal=journal,
        note=progress or (lambda _msg: None),
        stream=stream,
        on_rollout=on_rollout,
    )
    report = TaskReport(task.task_id, resumed=bool(journal and journal.resumed))
    if journal is not None and stream is not None and journal.undelivered():
        stream(journal.undelivered())  # maybe delivered before the kill, maybe not: at least once

    loc = stages.localize_files(rnd)
    repairs = stages.repair(rnd, loc)
    tests = stages.write_tests(rnd, loc, catalog)
    run = stages.run_matrix(rnd, repairs, tests)
    synthesis = stages.Synthesis()
    if run.matrix is None:
        report.error = run.error
    else:
        first = stages.select(rnd, run.matrix, repairs)
        synthesis = stages.synthesise(rnd, loc, run, repairs, first)
        final = synthesis.selection or first
        report.scores, report.selected, report.synthesized = final.scores, final.selected, final.synthesized
        if final.selected:
            report.selected_resolved = run.matrix.rows[final.selected].resolved
        report.false_positives = stages.catalogue(rnd, run.matrix, repairs, synthesis, first, final, catalog)
    report.matrix = run.matrix
    report.patches = repairs.patches
    stages.archive_outcomes(rnd, loc, repairs, tests, synthesis, run.matrix)
    report.rollouts = [r for r, _ in loc.rollouts] + repairs.rollouts + tests.rollouts + synthesis.rollouts
    report.events = rnd.archive.events
    return report
