"""Training-step events: one ``training_step`` event per optimiser step, from a TRL/transformers callback.

The trainers log every step (``logging_steps=1``); the callback turns each log into an event with
loss, reward stats, kl, learning rate, grad norm, tokens/s, the policy version and, when the step
saved one, the checkpoint path. Transformers logs a step before it saves it, so an event is held
until the save (or the next log, or the end of training) and then emitted. Event ids are
deterministic from (policy version, trainer, step): a resumed run re-emits the same ids and the
warehouse dedups them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from vtforge.schemas import derived_span_id, derived_trace_id, new_event

if TYPE_CHECKING:
    from vtforge.trainers.rewards import Judgement

PRODUCER = "vtforge.trainers"

# Keys every trainer logs under its own name, mapped to the event's fields.
_FIELD_KEYS = {
    "loss": ("loss",),
    "reward_mean": ("reward",),
    "reward_std": ("reward_std",),
    "kl": ("kl",),
    "learning_rate": ("learning_rate",),
    "grad_norm": ("grad_norm",),
}


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def training_step_event(
    *,
    trainer: str,
    step: int,
    policy_version: str,
    logs: dict[str, Any],
    tokens_per_s: float | None,
    samples: int,
    checkpoint_path: str | None,
    extra_metrics: dict[str, float] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "trainer": trainer,
        "step": int(step),
        "epoch": _number(logs.get("epoch")),
        "tokens_per_s": tokens_per_s,
        "samples": int(samples),
        "policy_version": policy_version,
        "checkpoint_path": checkpoint_path,
    }
    used = {"epoch", "train_runtime", "train_tokens_per_second"}
    for name, keys in _FIELD_KEYS.items():
        payload[name] = next((_number(logs[k]) for k in keys if k in logs), None)
        used.update(keys)
    metrics = {k: v for k, raw in logs.items() if k not in used and (v := _number(raw)) is not None}
    metrics.update(extra_metrics or {})
    payload["metrics"] = metrics
    trace_id = run_trace_id(policy_version)
    return new_event(
        "training_step",
        payload,
        producer=PRODUCER,
        stage="rl" if trainer == "grpo" else "agentless",
        key=f"{policy_version}/{trainer}/{step}",
        run_id=run_id,
        trace_id=trace_id,
        span_id=derived_span_id(trace_id, f"step/{trainer}/{step}"),
        parent_span_id=derived_span_id(trace_id, "run"),
    )


def run_trace_id(policy_version: str) -> str:
    """A training run (the policy version it makes) is one OpenTelemetry trace: its root span is
    the run, every optimiser step and every GRPO sample a child, a sample's patch and reward the
    sample's children."""
    return derived_trace_id("train", policy_version)


class TrainingStepEvents(TrainerCallback):
    """Emits a ``training_step`` event for every logged optimiser step through ``emit``."""

    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        *,
        trainer: str,
        policy_version: str,
        samples_per_step: int,
        extra_metrics: Callable[[], dict[str, float]] | None = None,
        run_id: str | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.emit = emit
        self.on_event = on_event
        self.trainer = trainer
        self.policy_version = policy_version
        self.samples_per_step = samples_per_step
        self.extra_metrics = extra_metrics
        self.run_id = run_id
        self.emitted: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None
        self._last_time = time.perf_counter()
        self._last_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time = time.perf_counter()
        self._last_tokens = int(state.num_input_tokens_seen or 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "train_loss" in logs:  # the end-of-training summary, not a step
            return
        self._flush()
        now = time.perf_counter()
        tokens = int(state.num_input_tokens_seen or 0)
        elapsed = now - self._last_time
        tokens_per_s = (
            (tokens - self._last_tokens) / elapsed if elapsed > 0 and tokens > self._last_tokens else None
        )
        self._last_time, self._last_tokens = now, tokens
        self._pending = training_step_event(
            trainer=self.trainer,
            step=state.global_step,
            policy_version=self.policy_version,
            logs=logs,
            tokens_per_s=tokens_per_s,
            samples=self.samples_per_step,
            checkpoint_path=None,
            extra_metrics=self.extra_metrics() if self.extra_metrics else None,
            run_id=self.run_id,
        )

    def on_save(self, args, state, control, **kwargs):
        if self._pending is not None and self._pending["step"] == state.global_step:
            self._pending["checkpoint_path"] = f"{args.output_dir}/checkpoint-{state.global_step}"
        self._flush()

    def on_train_end(self, args, state, control, **kwargs):
        self._flush()

    def _flush(self) -> None:
        if self._pending is not None:
            self.emit(self._pending)
            self.emitted.append(self._pending)
            if self.on_event is not None:
                self.on_event(self._pending)
            self._pending = None


def parse_status_of(judgement: Judgement | None) -> str:
    """The rollout's ``parse_status``: the reward's typed parse failure, ``no_edit`` when untyped."""
    if judgement is None:
        return "ok"
    if judgement.parse_status:
        return judgement.parse_status
    return "no_edit" if judgement.outcome == "no_edit" else "ok"


def sample_events(
    *,
    row: dict[str, Any],
    completion: str,
    reward: float | None,
    policy_version: str,
    sample_index: int,
    model: str,
    engine: str,
    temperature: float,
    prompt_tokens: int,
    completion_tokens: int,
    truncated: bool,
    judgement: Any = None,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """A GRPO sample as a ``rollout`` (role bugfixer, stage rl) and, when it proposed a patch that
    was judged (``judgement`` from ``SandboxReward``), its ``patch_proposed`` and ``reward_assigned``.

    The warehouse's rollout outcomes, patch telemetry, gates and replay buffer pick these up like
    any self-play rollout, so the successes of one RL run can be replayed in the next. Without a
    judgement (a custom reward) the rollout carries the outcome only (``resolved`` counts as a
    success downstream).
    """
    from vtforge.schemas import stable_id
    from vtforge.tasks.diffs import changed_paths
    from vtforge.trainers.rewards import answer_text, diff_line_counts

    rollout_id = stable_id("grpo", policy_version, row.get("slot"), sample_index)
    prompt = [dict(m) for m in row.get("prompt") or []]
    messages = [
        {"role": m["role"], "content": m["content"], "name": None, "tool_call_id": None} for m in prompt
    ]
    messages.append({"role": "assistant", "content": completion, "name": None, "tool_call_id": None})
    if judgement is not None:
        outcome = judgement.outcome if judgement.outcome != "no_edit" else "unresolved"
    else:
        outcome = "infra_failure" if reward is None else ("resolved" if reward >= 1.0 else "unresolved")
    task_id = row.get("task_id")
    common = {"producer": PRODUCER, "stage": "rl", "task_id": task_id, "run_id": run_id}
    trace_id = run_trace_id(policy_version)
    sample_span = derived_span_id(trace_id, f"sample/{rollout_id}")

    def child(name: str) -> dict[str, str]:
        return {
            "trace_id": trace_id,
            "span_id": derived_span_id(trace_id, name),
            "parent_span_id": sample_span,
        }

    events = [
        new_event(
            "rollout",
            {
                "rollout_id": rollout_id,
                "role": "bugfixer",
                "model": model,
                "policy_version": policy_version,
                "engine": engine,
                "sample_index": int(sample_index),
                "temperature": float(temperature),
                "prompt_tokens": int(prompt_tokens),
                "completion_tokens": int(completion_tokens),
                "latency_ms": 0.0,  # generation is batched; per-sample latency is not measured
                "stop_reason": "length" if truncated else "stop",
                "messages": messages,
                "reasoning": None,
                "parse_status": parse_status_of(judgement),
                "retry_index": 0,
                "outcome": outcome,
                "cached_prompt_tokens": None,
                "num_turns": 1,
            },
            key=rollout_id,
            **common,
            trace_id=trace_id,
            span_id=sample_span,
            parent_span_id=derived_span_id(trace_id, "run"),
        )
    ]
    if judgement is None or judgement.patch is None:
        return events
    patch_id = stable_id("grpo-patch", rollout_id)
    added, removed = diff_line_counts(judgement.patch)
    answer = answer_text(completion)
    events.append(
        new_event(
            "patch_proposed",
            {
                "patch_id": patch_id,
                "rollout_id": rollout_id,
                "diff": judgement.patch,
                "search_replace": answer if "SEARCH" in answer else None,
                "files": changed_paths(judgement.patch),
                "lines_added": added,
                "lines_removed": removed,
                "apply_status": judgement.apply_status,
                "apply_error": judgement.error if judgement.apply_status == "failed" else None,
            },
            key=f"patch/{rollout_id}",
            **common,
            trace_id=trace_id,
            span_id=derived_span_id(trace_id, f"patch/{rollout_id}"),
            parent_span_id=sample_span,
        )
    )
    events.append(
        new_event(
            "reward_assigned",
            {
                "reward_id": stable_id("grpo-reward", rollout_id),
                "subject_kind": "patch",
                "subject_id": patch_id,
                "rollout_id": rollout_id,
                "execution_id": None,
                "policy_version": policy_version,
                "reward": 0.0 if judgement.reward is None else float(judgement.reward),
                "outcome": judgement.outcome,
            },
            key=f"reward/{rollout_id}",
            **common,
            trace_id=trace_id,
            span_id=derived_span_id(trace_id, f"reward/{rollout_id}"),
            parent_span_id=sample_span,
        )
    )
    return events
