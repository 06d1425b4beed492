"""One interface for every way of sampling a completion.

``Engine.generate`` takes a batch of ``Request``s and returns one ``Completion`` per request, in
order. It never raises for one failed request: the completion carries ``error`` and an empty text,
and the rollout records it (``parse_status = engine_error``).

``generate_stream`` yields ``(index, completion)`` as each completion finishes (an engine that
generates one request after another overrides it), so self-play can archive a sample the moment
it exists. ``context_window`` and ``count_tokens`` let prompts be trimmed to what the model reads;
an engine that cannot tell returns ``None`` and prompts fall back to a conservative estimate.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]


@dataclass(frozen=True)
class Request:
    messages: list[Message]
    temperature: float
    max_tokens: int
    task_id: str = ""
    role: str = ""
    sample_index: int = 0
    retry_index: int = 0
    seed: int | None = None


@dataclass
class Completion:
    text: str
    reasoning: str | None = None  # when the server returns it apart (vLLM's reasoning_content)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    stop_reason: str = "stop"
    model: str = ""
    error: str | None = None
    cached_prompt_tokens: int | None = None  # prompt tokens served from the KV cache, when known
    synthetic: bool = False  # a recorded, labelled synthetic completion (replay)
    labels: dict[str, str] = field(default_factory=dict)


class Engine(abc.ABC):
    name: str = "abstract"
    model: str = ""
    context_window: int | None = None  # positions the model reads (prompt + completion), when known

    @abc.abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """One completion per request, in order."""

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Completion]]:
        """``(request index, completion)`` as completions finish; by default all at once, in order."""
        yield from enumerate(self.generate(requests))

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        """The prompt's length in the model's tokens, chat template included; ``None`` if unknown."""
        return None

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections or models."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
