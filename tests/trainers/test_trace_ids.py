"""A training run is one OpenTelemetry trace: its steps and GRPO samples under the run, a sample's
patch and reward under the sample."""

from __future__ import annotations

from vtforge.trainers.events import run_trace_id, sample_events, training_step_event
from vtforge.trainers.rewards import Judgement


def _step(step: int, version: str = "grpo-7") -> dict:
    return training_step_event(
        trainer="grpo",
        step=step,
        policy_version=version,
        logs={"loss": 0.5},
        tokens_per_s=1.0,
        samples=4,
        checkpoint_path=None,
    )["envelope"]


def test_steps_and_samples_of_one_run_share_its_trace() -> None:
    first, second, other = _step(1), _step(2), _step(1, "grpo-8")
    assert first["trace_id"] == second["trace_id"] == run_trace_id("grpo-7") != other["trace_id"]
    assert first["parent_span_id"] == second["parent_span_id"]  # the run
    assert first["span_id"] != second["span_id"]
    judged = Judgement(1.0, "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n", "resolved", None, "applied")
    rollout, patch, reward = sample_events(
        row={"task_id": "t1", "slot": 3, "prompt": [{"role": "user", "content": "fix"}]},
        completion="diff",
        reward=1.0,
        policy_version="grpo-7",
        sample_index=0,
        model="m",
        engine="transformers",
        temperature=1.0,
        prompt_tokens=3,
        completion_tokens=5,
        truncated=False,
        judgement=judged,
    )
    envelopes = [e["envelope"] for e in (rollout, patch, reward)]
    assert {e["trace_id"] for e in envelopes} == {first["trace_id"]}
    assert envelopes[0]["parent_span_id"] == first["parent_span_id"]  # a sample hangs under the run
    assert envelopes[1]["parent_span_id"] == envelopes[2]["parent_span_id"] == envelopes[0]["span_id"]
