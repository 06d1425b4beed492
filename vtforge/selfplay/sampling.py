"""Sampling with the temperature schedule and retries.

Sample 0 runs at ``first_temperature`` (greedy by default), every other sample at ``temperature``.
An output that yields nothing usable is re-sampled up to ``max_retries`` times; retries run at
``temperature`` (a greedy retry would repeat itself). Every attempt is kept: each is a rollout.
Requests of one round go to the engine as one batch, so an HTTP engine keeps its concurrency full.
Each rollout is handed to ``on_rollout`` the moment its completion is parsed (engines that finish
requests one by one stream them), so a caller can archive samples before the round ends.

A resumed round passes the completions it already has (``recorded``, by role, sample and retry
index): those requests are not sent to the engine and their rollouts are not handed to
``on_rollout`` again; they are parsed as before, so the rollouts are the ones a whole run makes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vtforge.schemas import stable_id
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

    @classmethod
    def for_engine(cls, selfplay: Any, engine: Any, max_new_tokens: int | None = None) -> Schedule:
        """The schedule for ``engine``: ``max_new_tokens`` as given, else ``selfplay.max_new_tokens``,
        capped on ``llamacpp`` by ``selfplay.llamacpp_max_new_tokens`` (0: no cap) — a CPU writes
        ~30-80 tokens a second, and a small model that loops or babbles never stops early."""
        tokens = max_new_tokens or selfplay.max_new_tokens
        if (
            max_new_tokens is None
            and getattr(engine, "name", "") == "llamacpp"
            and selfplay.llamacpp_max_new_tokens
        ):
            tokens = min(tokens, selfplay.llamacpp_max_new_tokens)
        return cls(selfplay.first_temperature, selfplay.temperature, selfplay.max_retries, tokens)

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
    on_rollout: Callable[[Rollout], None] | None = None,
    recorded: Mapping[tuple[str, int, int], Completion] | None = None,
) -> list[Rollout]:
    """``n`` samples (indices ``first_index`` …), each retried until it parses or retries run out.

    Rollouts come back in request order, round after round."""
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
        known = recorded or {}

        def rollout_of(request: Request, completion: Completion) -> Rollout:
            if completion.error:
                status, parsed = ENGINE_ERROR, None
            else:
                status, parsed = parse(completion.text)
            return Rollout(
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

        done: dict[int, Rollout] = {}
        asked: list[int] = []
        for position, request in enumerate(requests):
            kept = known.get((role, request.sample_index, request.retry_index))
            if kept is not None:
                done[position] = rollout_of(request, kept)
            else:
                asked.append(position)
        answered = 0
        if asked:
            for number, completion in engine.generate_stream([requests[p] for p in asked]):
                position = asked[number]
                rollout = done[position] = rollout_of(requests[position], completion)
                answered += 1
                if on_rollout is not None:
                    on_rollout(rollout)
        if answered != len(asked):
            raise RuntimeError(f"engine {engine.name} answered {answered} of {len(asked)} requests")
        again = []
        for position, request in enumerate(requests):
            rollout = done[position]
            rollouts.append(rollout)
            if not rollout.ok and request.retry_index < schedule.max_retries:
                again.append((request.sample_index, request.retry_index + 1))
        pending = again
    return rollouts
