"""A synthetic event stream, clearly labelled, for demos, tests and load.

Every event it makes has ``envelope.synthetic = true`` and producer ``vtforge.synthetic``. The
stream has the shape of real self-play: a task is registered, localized, then BugFixer and
TestWriter rollouts propose patches and tests, the sandbox executes them, rewards and a selection
follow, and a trainer logs steps. Identifiers join across events exactly as real producers'
do, and the same ``seed`` gives the same events (ids and timestamps included).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.envelope import new_event, stable_id

PRODUCER = "vtforge.synthetic/0.1.0"
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)

_MODULES = ["parser", "cache", "scheduler", "formatter", "resolver", "tokenizer", "router", "store"]
_FUNCS = ["merge", "normalize", "split_chunks", "resolve_path", "parse_header", "evict", "retry_after"]
_BUGS = [
    ("returns the wrong value when the input is empty", "if not items:\n        return []"),
    ("is off by one at the upper bound", "for i in range(len(items)):"),
    ("ignores the `strict` flag", "if strict and value is None:"),
    ("raises KeyError for a missing optional key", "value = mapping.get(key, default)"),
    ("drops the last element", "return items[:len(items)]"),
]


@dataclass(frozen=True)
class SyntheticTask:
    """The latent truth behind one synthetic task."""

    task_id: str
    repo: str
    module: str
    func: str
    bug: str
    fix_line: str
    success_rate: float
    split: str

    @property
    def source_file(self) -> str:
        return f"src/{self.repo.split('/')[1]}/{self.module}.py"

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.module}.py"


def make_tasks(n_tasks: int, seed: int) -> list[SyntheticTask]:
    rng = random.Random(seed)
    tasks = []
    for i in range(n_tasks):
        module, func = rng.choice(_MODULES), rng.choice(_FUNCS)
        bug, fix = rng.choice(_BUGS)
        repo = f"synthetic/pkg{i % 7}"
        tasks.append(
            SyntheticTask(
                task_id=f"{repo.replace('/', '__')}-{seed * 100_000 + 1000 + i}",
                repo=repo,
                module=module,
                func=func,
                bug=bug,
                fix_line=fix,
                success_rate=rng.choice([0.0, 0.05, 0.2, 0.35, 0.5, 0.8, 0.95]),
                split="eval" if i % 10 == 9 else "train",
            )
        )
    return tasks


def generate_events(
    n_tasks: int = 10,
    seed: int = 0,
    *,
    bugfixer_rollouts: int = 4,
    testwriter_rollouts: int = 4,
    policy_versions: tuple[str, ...] = ("v0",),
    training_steps: int = 5,
) -> Iterator[dict[str, Any]]:
    """The synthetic stream: every event type, joined the way real producers join them."""
    rng = random.Random(seed + 1)
    clock = _Clock(EPOCH + timedelta(days=seed % 28))
    for task in make_tasks(n_tasks, seed):
        yield _task_registered(task, clock)
        for version in policy_versions:
            run_id = stable_id("synthetic-run", seed, version)
            yield from _round(task, version, run_id, rng, clock, bugfixer_rollouts, testwriter_rollouts)
    for version in policy_versions:
        run_id = stable_id("synthetic-train", seed, version)
        for step in range(training_steps):
            yield _training_step(run_id, version, step, rng, clock)


class _Clock:
    """Deterministic, strictly increasing timestamps."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def tick(self, ms: float = 250.0) -> datetime:
        self.now += timedelta(milliseconds=ms)
        return self.now


def _common(task: SyntheticTask, clock: _Clock, **extra: Any) -> dict[str, Any]:
    return {
        "producer": PRODUCER,
        "task_id": task.task_id,
        "occurred_at": clock.tick(),
        "synthetic": True,
        **extra,
    }


def _gold_diff(task: SyntheticTask) -> str:
    return (
        f"diff --git a/{task.source_file} b/{task.source_file}\n"
        f"--- a/{task.source_file}\n+++ b/{task.source_file}\n"
        f"@@ -10,3 +10,3 @@ def {task.func}(items, strict=False):\n"
        f'     """{task.func.replace("_", " ").capitalize()} the items."""\n'
        f"-    pass  # bug: {task.bug}\n"
        f"+    {task.fix_line}\n"
        f"     return items\n"
    )


def _wrong_diff(task: SyntheticTask, variant: int) -> str:
    return (
        f"diff --git a/{task.source_file} b/{task.source_file}\n"
        f"--- a/{task.source_file}\n+++ b/{task.source_file}\n"
        f"@@ -10,3 +10,4 @@ def {task.func}(items, strict=False):\n"
        f'     """{task.func.replace("_", " ").capitalize()} the items."""\n'
        f"-    pass  # bug: {task.bug}\n"
        f"+    # attempt {variant}\n"
        f"+    items = list(items) if items else items\n"
        f"     return items\n"
    )


def _test_diff(task: SyntheticTask, name: str) -> str:
    return (
        f"diff --git a/{task.test_file} b/{task.test_file}\n"
        f"--- a/{task.test_file}\n+++ b/{task.test_file}\n"
        f"@@ -1,3 +1,7 @@\n"
        f" from pkg.{task.module} import {task.func}\n \n \n"
        f"+def {name}():\n"
        f"+    # reproduces: {task.func} {task.bug}\n"
        f"+    assert {task.func}([]) == []\n"
        f"+\n"
    )


def _task_registered(task: SyntheticTask, clock: _Clock) -> dict[str, Any]:
    gold = _gold_diff(task)
    payload = {
        "instance_id": task.task_id,
        "repo": task.repo,
        "base_commit": stable_id("commit", task.task_id) * 2 + stable_id("c2", task.task_id)[:8],
        "problem_statement": (
            f"`{task.func}` in `{task.module}` {task.bug}.\n\nSteps to reproduce:\n\n"
            f"```python\nfrom pkg.{task.module} import {task.func}\nprint({task.func}([]))\n```\n\n"
            "Expected the documented result; got something else. (synthetic task)"
        ),
        "patch": gold,
        "test_patch": _test_diff(task, f"test_{task.func}_regression"),
        "fail_to_pass": [f"{task.test_file}::test_{task.func}_regression"],
        "pass_to_pass": [f"{task.test_file}::test_{task.func}_basic", f"{task.test_file}::test_roundtrip"],
        "hints_text": None,
        "version": "0.1",
        "environment_setup_commit": None,
        "repo_dir": None,
        "source": "synthetic",
        "provenance": {
            "dataset_slice": "synthetic-demo",
            "origin": "vtforge.synthetic",
            "license": "Apache-2.0",
            "commit": None,
            "created_at": EPOCH,
            "importer_version": PRODUCER,
            "content_hash": stable_id("content", task.task_id, gold),
        },
        "difficulty_bucket": None,
        "baseline_success_rate": None,
        "split": task.split,
        "contamination_flags": [],
    }
    return new_event("task_registered", payload, key=task.task_id, stage="agentless", **_common(task, clock))


def _rollout(
    task: SyntheticTask,
    version: str,
    run_id: str,
    role: str,
    index: int,
    prompt: str,
    answer: str,
    reasoning: str,
    clock: _Clock,
    rng: random.Random,
) -> dict[str, Any]:
    rollout_id = stable_id("rollout", run_id, task.task_id, role, index)
    payload = {
        "rollout_id": rollout_id,
        "role": role,
        "model": "synthetic/kimi-dev-tiny",
        "policy_version": version,
        "engine": "synthetic",
        "sample_index": index,
        "temperature": 0.0 if index == 0 else 1.0,
        "prompt_tokens": len(prompt) // 4,
        "completion_tokens": (len(answer) + len(reasoning)) // 4,
        "latency_ms": round(rng.uniform(300, 4000), 1),
        "stop_reason": "stop",
        "messages": [
            {
                "role": "system",
                "content": f"You are the {role} of an agentless SWE pipeline.",
                "name": None,
                "tool_call_id": None,
            },
            {"role": "user", "content": prompt, "name": None, "tool_call_id": None},
            {
                "role": "assistant",
                "content": f"<think>{reasoning}</think>\n{answer}",
                "name": None,
                "tool_call_id": None,
            },
        ],
        "reasoning": reasoning,
        "parse_status": "ok",
        "retry_index": 0,
        "outcome": None,
        "cached_prompt_tokens": None,
        "num_turns": 1,
    }
    return new_event(
        "rollout", payload, key=rollout_id, run_id=run_id, **_common(task, clock, stage="selfplay")
    )


def _round(
    task: SyntheticTask,
    version: str,
    run_id: str,
    rng: random.Random,
    clock: _Clock,
    n_fix: int,
    n_test: int,
) -> Iterator[dict[str, Any]]:
    common = {"run_id": run_id}
    issue = f"Issue: `{task.func}` {task.bug}.\nRepository tree:\n" + "\n".join(
        f"src/{task.repo.split('/')[1]}/{m}.py" for m in _MODULES
    )
    # localization (frozen in RL; recall measured against the gold patch's files)
    predicted = [task.source_file] if rng.random() < 0.8 else []
    predicted += rng.sample(
        [f"src/{task.repo.split('/')[1]}/{m}.py" for m in _MODULES if m != task.module], 2
    )
    loc = _rollout(
        task,
        version,
        run_id,
        "localizer",
        0,
        issue,
        "\n".join(predicted),
        f"The failure is in {task.func}; {task.module} defines it.",
        clock,
        rng,
    )
    yield loc
    yield new_event(
        "localization_predicted",
        {"rollout_id": loc["rollout_id"], "files": predicted, "dropped": [], "method": "model"},
        key=f"{loc['rollout_id']}:loc",
        **_common(task, clock, stage="selfplay", **common),
    )
    # BugFixer
    patches = []
    for i in range(n_fix):
        correct = rng.random() < max(task.success_rate, 0.02)
        diff = _gold_diff(task) if correct else _wrong_diff(task, i)
        reasoning = (
            f"Reading {task.source_file}: {task.func} should handle the case where it {task.bug}. "
            + ("The guard belongs before the loop. " if correct else "Maybe converting to a list helps. ")
            + "I will make a minimal edit. " * 6
        )
        sr = (
            f"### {task.source_file}\n<<<<<<< SEARCH\n    pass\n=======\n    {task.fix_line}\n>>>>>>> REPLACE"
        )
        ro = _rollout(task, version, run_id, "bugfixer", i, issue, sr, reasoning, clock, rng)
        yield ro
        patch_id = stable_id("patch", task.task_id, diff)
        patches.append((patch_id, correct, ro["rollout_id"]))
        yield new_event(
            "patch_proposed",
            {
                "patch_id": patch_id,
                "rollout_id": ro["rollout_id"],
                "diff": diff,
                "search_replace": sr,
                "files": [task.source_file],
                "lines_added": diff.count("\n+") - 1,
                "lines_removed": diff.count("\n-") - 1,
                "apply_status": "applied",
                "apply_error": None,
            },
            key=f"{ro['rollout_id']}:patch",
            **_common(task, clock, stage="selfplay", **common),
        )
    # TestWriter
    tests = []
    test_rollouts: dict[str, str] = {}
    for i in range(n_test):
        name = f"test_{task.func}_repro_{i}"
        diff = _test_diff(task, name)
        discriminating = rng.random() < 0.7
        ro = _rollout(
            task,
            version,
            run_id,
            "testwriter",
            i,
            issue,
            diff,
            f"A test that calls {task.func} on the failing input. " * 5,
            clock,
            rng,
        )
        yield ro
        test_id = stable_id("test", task.task_id, diff)
        tests.append((test_id, name, discriminating))
        test_rollouts[test_id] = ro["rollout_id"]
        yield new_event(
            "test_proposed",
            {
                "test_id": test_id,
                "rollout_id": ro["rollout_id"],
                "test_file": task.test_file,
                "test_names": [f"{task.test_file}::{name}"],
                "diff": diff,
                "search_replace": None,
                "is_counterexample": False,
            },
            key=f"{ro['rollout_id']}:test",
            **_common(task, clock, stage="selfplay", **common),
        )
    # every generated test once on the base commit (empty patch): a test counts only if it fails there
    for test_id, name, discriminating in tests:
        execution_id = stable_id("exec-base", run_id, task.task_id, test_id)
        tests_run = [_status(f"{task.test_file}::{name}", not discriminating, rng)]
        yield new_event(
            "execution_result",
            _execution(execution_id, None, test_id, tests_run, 1 if discriminating else 0, rng),
            key=execution_id,
            **_common(task, clock, stage="selfplay", **common),
        )
        # synthetic gold always passes a test of the right behaviour: fails before + passes after
        outcome = "fails_before_passes_after" if discriminating else "not_discriminating"
        yield new_event(
            "reward_assigned",
            _reward("test", test_id, test_rollouts[test_id], execution_id, version, discriminating, outcome),
            key=f"reward:{execution_id}",
            **_common(task, clock, stage="selfplay", **common),
        )
    # executions: each patch once, all generated tests + the task's own tests in one session
    scores = []
    unique = {
        patch_id: (patch_id, correct, rollout_id) for patch_id, correct, rollout_id in reversed(patches)
    }
    for patch_id, correct, rollout_id in sorted(unique.values(), key=lambda p: patches.index(p)):
        statuses = []
        for _, name, discriminating in tests:
            passed = correct or not discriminating
            statuses.append(_status(f"{task.test_file}::{name}", passed, rng))
        statuses.append(_status(f"{task.test_file}::test_{task.func}_regression", correct, rng))
        statuses.append(_status(f"{task.test_file}::test_{task.func}_basic", True, rng))
        execution_id = stable_id("exec", run_id, patch_id)
        yield new_event(
            "execution_result",
            _execution(execution_id, patch_id, None, statuses, 0 if correct else 1, rng),
            key=execution_id,
            **_common(task, clock, stage="selfplay", **common),
        )
        outcome = "resolved" if correct else "unresolved"
        yield new_event(
            "reward_assigned",
            _reward("patch", patch_id, rollout_id, execution_id, version, correct, outcome),
            key=f"reward:{execution_id}",
            **_common(task, clock, stage="selfplay", **common),
        )
        passing = sum(1 for _, _, d in tests if correct or not d)
        scores.append((patch_id, passing / max(len(tests), 1), 1.0, 1.0 if correct else 0.8))
    ranked = sorted(scores, key=lambda s: (-(s[1] + s[2] + 0.1 * s[3]), s[0]))
    yield new_event(
        "selection_decided",
        {
            "selection_id": stable_id("selection", run_id, task.task_id),
            "method": "weighted",
            "selected_patch_id": ranked[0][0] if ranked else None,
            "weights": {"test_pass_rate": 1.0, "regression_safety": 1.0, "diff_minimality": 0.1},
            "scores": [
                {
                    "patch_id": p,
                    "test_pass_rate": t,
                    "regression_safety": r,
                    "diff_minimality": d,
                    "votes": 0,
                    "total": round(t + r + 0.1 * d, 6),
                    "rank": rank,
                }
                for rank, (p, t, r, d) in enumerate(ranked, start=1)
            ],
            "synthesized": False,
        },
        key=f"selection:{run_id}:{task.task_id}",
        **_common(task, clock, stage="selfplay", **common),
    )


def _execution(
    execution_id: str,
    patch_id: str | None,
    test_id: str | None,
    tests: list[dict[str, Any]],
    exit_code: int,
    rng: random.Random,
) -> dict[str, Any]:
    """An ``execution_result`` payload of one synthetic sandbox run (one pytest session)."""
    return {
        "execution_id": execution_id,
        "patch_id": patch_id,
        "test_id": test_id,
        "backend": "synthetic",
        "image": None,
        "image_digest": None,
        "command": ["python", "-m", "pytest", "-q"],
        "status": "completed",
        "exit_code": exit_code,
        "tests": tests,
        "duration_s": round(rng.uniform(0.3, 3.0), 3),
        "setup_s": 0.0,
        "cpu_s": None,
        "max_rss_mb": None,
        "limits": {"memory_mb": "2048", "pids": "256"},
        "flaky_reruns": 0,
        "infra_failure": False,
        "error": None,
        "stdout_tail": None,
        "stderr_tail": None,
    }


def _reward(
    kind: str, subject_id: str, rollout_id: str, execution_id: str, version: str, won: bool, outcome: str
) -> dict[str, Any]:
    """A ``reward_assigned`` payload: outcome only, 1.0 or 0.0."""
    return {
        "reward_id": stable_id("reward", execution_id),
        "subject_kind": kind,
        "subject_id": subject_id,
        "rollout_id": rollout_id,
        "execution_id": execution_id,
        "policy_version": version,
        "reward": 1.0 if won else 0.0,
        "outcome": outcome,
    }


def _status(name: str, passed: bool, rng: random.Random) -> dict[str, Any]:
    return {
        "name": name,
        "status": "PASSED" if passed else "FAILED",
        "duration_s": round(rng.uniform(0.001, 0.2), 4),
        "reruns": 0,
        "flaky": False,
    }


def _training_step(run_id: str, version: str, step: int, rng: random.Random, clock: _Clock) -> dict[str, Any]:
    return new_event(
        "training_step",
        {
            "trainer": "grpo",
            "step": step,
            "epoch": step / 10,
            "loss": round(2.0 / (1 + step), 4),
            "reward_mean": round(min(1.0, 0.2 + 0.05 * step + rng.uniform(-0.02, 0.02)), 4),
            "reward_std": 0.3,
            "kl": round(0.01 * step, 4),
            "learning_rate": 1e-6,
            "grad_norm": 1.0,
            "tokens_per_s": 1000.0,
            "samples": 16,
            "policy_version": version,
            "checkpoint_path": None,
            "metrics": {},
        },
        key=f"{run_id}:{step}",
        producer=PRODUCER,
        run_id=run_id,
        stage="rl",
        occurred_at=clock.tick(),
        synthetic=True,
    )
