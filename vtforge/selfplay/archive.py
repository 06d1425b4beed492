"""Every rollout, execution and decision of a self-play run as an event.

Event ids are deterministic (``key=``) so a re-emitted task is the same events and the warehouse
dedups it. Envelope ``synthetic`` follows the completions: a patch, test or execution born from a
recorded synthetic completion is synthetic; base and gold runs are real executions (``false``).
``attributes`` carry the round, what a run was (``base`` | ``gold`` | ``candidate`` |
``synthesis``) and the labels of recorded completions.

A task's round is one OpenTelemetry trace: ``trace_id`` (W3C, 32 hex digits) and every
``span_id`` (16) are derived from the run, task and round, so re-emitting a task gives the same
ids. The round is the root span (it has no event of its own: an exporter makes it from its
children); rollouts, selections, executions and counterexample tests are its children; a rollout's
localization, patch, test and rewards are the rollout's children.

A rollout is archived twice when the caller streams: ``sampled`` makes its event the moment it is
parsed (key ``rollout/<id>/sampled``, attribute ``phase = sampled``, ``outcome`` null until the
matrix judges it, a parse failure's reason otherwise), so an interrupted round keeps its samples;
``rollout`` makes the final event when the task is done (key ``rollout/<id>``). Their event ids
differ on purpose: the warehouse drops a second event with a known id (and flags one whose payload
changed), while its ``rollouts`` table keeps the latest event of each ``rollout_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vtforge.sandbox.api import RunResult
from vtforge.schemas import derived_span_id, derived_trace_id, new_event
from vtforge.selfplay.diffs import diff_stats
from vtforge.selfplay.engines.base import Completion
from vtforge.selfplay.sampling import Rollout
from vtforge.selfplay.selection import Score, Weights

PRODUCER = "vtforge.selfplay"


class Archive:
    """Builds the events of one task in one run (emitted together when the task is done; rollouts'
    ``sampled`` events earlier, one by one)."""

    def __init__(self, *, run_id: str, task_id: str, policy_version: str, engine: str, round_index: int = 1):
        self.run_id = run_id
        self.task_id = task_id
        self.policy_version = policy_version
        self.engine = engine
        self.round = round_index
        self.trace_id = derived_trace_id("selfplay", run_id, task_id, round_index)
        self.root_span = self.span_id("round")
        self.events: list[dict[str, Any]] = []

    def span_id(self, name: str) -> str:
        """The span id of ``name`` (``round``, ``rollout/<id>`` …) in this task's trace."""
        return derived_span_id(self.trace_id, name)

    def _emit(
        self,
        event_type: str,
        payload: dict[str, Any],
        key: str,
        *,
        synthetic: bool,
        attributes: Mapping[str, str] | None = None,
        keep: bool = True,
        span: str | None = None,
        parent: str | None = None,
    ) -> dict[str, Any]:
        """``span``: the event's span (default: its key); ``parent``: its parent's (default: the round)."""
        attrs = {"round": str(self.round), **(attributes or {})}
        event = new_event(
            event_type,
            payload,
            producer=PRODUCER,
            key=key,
            task_id=self.task_id,
            run_id=self.run_id,
            trace_id=self.trace_id,
            span_id=self.span_id(span or key),
            parent_span_id=self.span_id(parent) if parent else self.root_span,
            synthetic=synthetic,
            attributes=attrs,
        )
        if keep:
            self.events.append(event)
        return event

    def rollout(self, r: Rollout, *, outcome: str | None) -> None:
        self._rollout(r, outcome=outcome, key=f"rollout/{r.rollout_id}", phase=None)

    def sampled(self, r: Rollout) -> dict[str, Any]:
        """The rollout's event as soon as it is parsed (not kept in ``events``: the caller streams it)."""
        return self._rollout(
            r, outcome=None if r.ok else r.status, key=f"rollout/{r.rollout_id}/sampled", phase="sampled"
        )

    def _rollout(self, r: Rollout, *, outcome: str | None, key: str, phase: str | None) -> dict[str, Any]:
        c: Completion = r.completion
        text = c.text
        messages = [
            *({"role": m["role"], "content": m["content"]} for m in r.prompt),
            {"role": "assistant", "content": text},
        ]
        reasoning = c.reasoning
        parsed = r.parsed
        if reasoning is None and parsed is not None:
            reasoning = getattr(parsed, "reasoning", None) or getattr(
                getattr(parsed, "edit", None), "reasoning", None
            )
        return self._emit(
            "rollout",
            {
                "rollout_id": r.rollout_id,
                "role": r.role,
                "model": c.model or self.engine,
                "policy_version": self.policy_version,
                "engine": self.engine,
                "sample_index": r.sample_index,
                "temperature": float(r.temperature),
                "prompt_tokens": int(c.prompt_tokens or sum(len(m["content"]) for m in r.prompt) // 4),
                "completion_tokens": int(c.completion_tokens or len(text) // 4),
                "latency_ms": float(c.latency_ms),
                "stop_reason": c.stop_reason if not c.error else f"error: {c.error}"[:500],
                "messages": [{**m, "name": None, "tool_call_id": None} for m in messages],
                "reasoning": reasoning,
                "parse_status": r.status,
                "retry_index": r.retry_index,
                "outcome": outcome,
                "cached_prompt_tokens": c.cached_prompt_tokens,
                "num_turns": 1,
            },
            key,
            synthetic=c.synthetic,
            attributes={
                **{f"label.{k}": v for k, v in c.labels.items()},
                **({"phase": phase} if phase else {}),
            },
            keep=phase is None,
            span=f"rollout/{r.rollout_id}",  # the sampled and the final event are one span
        )

    def localization(self, r: Rollout, target: str) -> None:
        loc = r.parsed
        self._emit(
            "localization_predicted",
            {
                "rollout_id": r.rollout_id,
                "files": list(loc.files) if loc else [],
                "dropped": list(loc.dropped) if loc else [],
                "method": "model",
            },
            f"localization/{r.rollout_id}",
            synthetic=r.completion.synthetic,
            attributes={"target": target},
            parent=f"rollout/{r.rollout_id}",
        )

    def patch(self, r: Rollout, patch_id: str, result: RunResult | None) -> None:
        edit = r.parsed
        added, removed = diff_stats(edit.diff)
        if result is None:
            status, error = "not_tried", None
        elif result.status == "patch_apply_failed" and not result.applied_with:
            status, error = "failed", "; ".join(result.apply_errors)[:2000] or result.error
        elif result.applied_with and result.applied_with[0] == "patch --fuzz":
            status, error = "applied_with_fuzz", None
        elif result.infra_failure:
            status, error = "not_tried", result.error
        else:
            status, error = "applied", None
        self._emit(
            "patch_proposed",
            {
                "patch_id": patch_id,
                "rollout_id": r.rollout_id,
                "diff": edit.diff,
                "search_replace": edit.answer,
                "files": edit.files,
                "lines_added": added,
                "lines_removed": removed,
                "apply_status": status,
                "apply_error": error,
            },
            f"patch/{r.rollout_id}",
            synthetic=r.completion.synthetic,
            attributes={"kind": r.role},
            parent=f"rollout/{r.rollout_id}",
        )

    def test(
        self,
        r: Rollout | None,
        test_id: str,
        test_file: str,
        names: Sequence[str],
        diff: str,
        search_replace: str | None,
        *,
        counterexample: bool = False,
        synthetic: bool = False,
        attributes: Mapping[str, str] | None = None,
        key_suffix: str = "",
    ) -> None:
        key = (
            f"test/{r.rollout_id}"
            if r is not None
            else f"counterexample/{self.run_id}/{test_id}/{key_suffix}"
        )
        self._emit(
            "test_proposed",
            {
                "test_id": test_id,
                "rollout_id": r.rollout_id if r else None,
                "test_file": test_file,
                "test_names": list(names),
                "diff": diff,
                "search_replace": search_replace,
                "is_counterexample": counterexample,
            },
            key,
            synthetic=r.completion.synthetic if r is not None else synthetic,
            attributes=attributes,
            parent=f"rollout/{r.rollout_id}" if r is not None else None,
        )

    def execution(
        self, execution_id: str, result: RunResult, *, patch_id: str | None, kind: str, synthetic: bool
    ) -> None:
        payload = result.to_event_payload(execution_id=execution_id, patch_id=patch_id, test_id=None)
        self._emit(
            "execution_result",
            payload,
            f"execution/{execution_id}",
            synthetic=synthetic,
            attributes={"kind": kind},
        )

    def reward(
        self,
        *,
        subject_kind: str,
        subject_id: str,
        rollout: Rollout,
        execution_id: str | None,
        reward: float,
        outcome: str,
    ) -> None:
        reward_id = f"{rollout.rollout_id}:{subject_kind}"
        self._emit(
            "reward_assigned",
            {
                "reward_id": reward_id,
                "subject_kind": subject_kind,
                "subject_id": subject_id,
                "rollout_id": rollout.rollout_id,
                "execution_id": execution_id,
                "policy_version": self.policy_version,
                "reward": float(reward),
                "outcome": outcome,
            },
            f"reward/{reward_id}",
            synthetic=rollout.completion.synthetic,
            parent=f"rollout/{rollout.rollout_id}",
        )

    def selection(
        self,
        selection_id: str,
        method: str,
        selected: str | None,
        weights: Weights,
        scores: Sequence[Score],
        *,
        synthesized: bool,
        synthetic: bool,
    ) -> None:
        self._emit(
            "selection_decided",
            {
                "selection_id": selection_id,
                "method": method,
                "selected_patch_id": selected,
                "weights": weights.as_map(),
                "scores": [s.as_event() for s in scores],
                "synthesized": synthesized,
            },
            f"selection/{selection_id}",
            synthetic=synthetic,
        )
