"""Measure a policy's baseline success on tasks, so the warehouse can put each in a curriculum bucket.

``run_baseline`` runs self-play's own BugFixer path (``vtforge.selfplay.loop.run_task``: localize,
N BugFixer samples, each unique patch run in the sandbox against the task's FAIL_TO_PASS and
PASS_TO_PASS tests, outcome rewards) with no TestWriter samples, no synthesis and no injected
counterexamples, and emits every event it produced with ``stage = 'eval'`` and the attribute
``purpose = baseline``. The warehouse (``rl_prompts``) then takes a task's baseline as the resolved
share of those judged BugFixer samples (``baseline_source = 'baseline'``) and its bucket from the
one rule, ``vtforge.tasks.model.bucket_of``. Infra failures are not judged, so they never count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vtforge.config import Config
from vtforge.tasks.model import bucket_of

STAGE = "eval"
PURPOSE = "baseline"


@dataclass
class TaskBaseline:
    """One task's measurement as this run saw it (the warehouse's figure is authoritative)."""

    task_id: str
    samples: int = 0
    judged: int = 0
    resolved: int = 0
    error: str | None = None

    @property
    def rate(self) -> float | None:
        return self.resolved / self.judged if self.judged else None


@dataclass
class BaselineSummary:
    run_id: str
    policy_version: str
    samples_per_task: int
    events: int = 0
    tasks: list[TaskBaseline] = field(default_factory=list)

    def buckets(self, easy_min: float, medium_min: float) -> dict[str, str]:
        return {t.task_id: bucket_of(t.rate, easy_min, medium_min) for t in self.tasks}


def mark_baseline(events: Iterable[dict[str, Any]], policy_version: str) -> list[dict[str, Any]]:
    """The events as baseline measurements: stage 'eval', attributes purpose and measured policy."""
    marked = []
    for event in events:
        envelope = event["envelope"]
        envelope["stage"] = STAGE
        envelope["attributes"] = {
            **envelope.get("attributes", {}),
            "purpose": PURPOSE,
            "baseline_policy": policy_version,
        }
        marked.append(event)
    return marked


def _judged(events: Sequence[dict[str, Any]]) -> TaskBaseline:
    """Count one task's BugFixer samples (last attempt of each) and their judged outcomes."""
    rollouts = {
        e["rollout_id"]: e
        for e in events
        if e["envelope"]["event_type"] == "rollout" and e["role"] == "bugfixer"
    }
    last: dict[int, dict[str, Any]] = {}
    for r in rollouts.values():
        held = last.get(r["sample_index"])
        if held is None or (r["retry_index"] or 0) > (held["retry_index"] or 0):
            last[r["sample_index"]] = r
    rewards = {
        e["rollout_id"]: e
        for e in events
        if e["envelope"]["event_type"] == "reward_assigned" and e["rollout_id"] in rollouts
    }
    out = TaskBaseline(task_id="", samples=len(last))
    for r in last.values():
        reward = rewards.get(r["rollout_id"])
        if reward is None or reward["outcome"] in ("infra_failure", "flaky"):  # not judged, as the warehouse
            continue
        out.judged += 1
        out.resolved += int(reward["reward"] >= 1.0)
    return out


def run_baseline(
    cfg: Config,
    tasks: Sequence[Any],
    engine: Any,
    box: Any,
    emit: Callable[[list[dict[str, Any]]], Any],
    *,
    samples: int,
    policy_version: str,
    run_id: str,
    progress: Callable[[str], None] | None = None,
) -> BaselineSummary:
    """``samples`` BugFixer samples per task with ``engine``, judged in ``box``; events go to ``emit``."""
    from vtforge.selfplay.loop import Options, run_task
    from vtforge.selfplay.sampling import Schedule
    from vtforge.selfplay.selection import Weights

    sp = cfg.forge.selfplay
    opts = Options.measurement(cfg, patches=samples, tests=0, run_id=run_id, policy_version=policy_version)
    schedule = Schedule.for_engine(sp, engine)
    weights = Weights.from_config(cfg.forge.selection)
    summary = BaselineSummary(run_id=run_id, policy_version=policy_version, samples_per_task=samples)
    for task in tasks:
        if progress is not None:
            progress(task.task_id)
        report = run_task(task, engine, box, opts, schedule=schedule, weights=weights, catalog=None)
        events = mark_baseline(report.events, policy_version)
        emit(events)
        counted = _judged(events)
        counted.task_id, counted.error = task.task_id, report.error
        summary.tasks.append(counted)
        summary.events += len(events)
    return summary
