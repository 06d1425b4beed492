"""Sampling with the temperature schedule and retries.

Sample 0 runs at ``first_temperature`` (greedy by default), every other sample at ``temperature``.
An output that yields nothing usable is re-sampled up to ``max_retries`` times; retries run at
``temperature`` (a greedy retry would repeat itself). Every attempt is kept: each is a rollout.
Requests of one round go to the engine as one batch, so an HTTP engine keeps its concurrency full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas import stable_id
from vtforge.selfplay.engines.base import Completion, Engine, Message, Request

ENGINE_ERROR = "engine_error"


@dataclass
class Rollout:
    rollout_id: str
    task_id: str
    role: str
    sample_index: int
    retry_index: int
    temperature: float
    prompt: list[Message]
    completion: Completion
    status: str  # "ok" or a parse failure reason
    parsed: Any = None  # Edit | TestEdit | Localization

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Schedule:
    first_temperature: float
    temperature: float
    max_retries: int
    max_tokens: int

    @classmethod
    def from_config(cls, selfplay: Any) -> Schedule:
        return cls(
            selfplay.first_temperature, selfplay.temperature, selfplay.max_retries, selfplay.max_new_tokens
        )

    def temperature_for(self, sample_index: int, retry_index: int) -> float:
        return self.first_temperature if sample_index == 0 and retry_index == 0 else self.temperature


def sample(
    engine: Engine,
    *,
    run_id: str,
    task_id: str,
    role: str,
    messages: list[Message],
    n: int,
    parse: Callable[[str], tuple[str, Any]],
    schedule: Schedule,
    first_index: int = 0,
    seed: int = 0,
) -> list[Rollout]:
    """``n`` samples (indices ``first_index`` …), each retried until it parses or retries run out."""
    rollouts: list[Rollout] = []
    pending = [(first_index + i, 0) for i in range(n)]
    while pending:
        requests = [
            Request(
                messages=messages,
                temperature=schedule.temperature_for(index, retry),
                max_tokens=schedule.max_tokens,
                task_id=task_id,
                role=role,
                sample_index=index,
                retry_index=retry,
                seed=seed + index * 1009 + retry,
            )
            for index, retry in pending
        ]
        completions = engine.generate(requests)
        again = []
        for request, completion in zip(requests, completions, strict=True):
            if completion.error:
                status, parsed = ENGINE_ERROR, None
            else:
                status, parsed = parse(completion.text)
            rollouts.append(
                Rollout(
                    rollout_id=stable_id(run_id, task_id, role, request.sample_index, request.retry_index),
                    task_id=task_id,
                    role=role,
                    sample_index=request.sample_index,
                    retry_index=request.retry_index,
                    temperature=request.temperature,
                    prompt=messages,
                    completion=completion,
                    status=str(status),
                    parsed=parsed,
                )
            )
            if status != "ok" and request.retry_index < schedule.max_retries:
                again.append((request.sample_index, request.retry_index + 1))
        pending = again
    return rollouts
