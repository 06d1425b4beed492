"""One interface for every way of sampling a completion.

``Engine.generate`` takes a batch of ``Request``s and returns one ``Completion`` per request, in
order. It never raises for one failed request: the completion carries ``error`` and an empty text,
and the rollout records it (``parse_status = engine_error``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
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
    synthetic: bool = False  # a recorded, labelled synthetic completion (replay)
    labels: dict[str, str] = field(default_factory=dict)


class Engine(abc.ABC):
    name: str = "abstract"
    model: str = ""

    @abc.abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """One completion per request, in order."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections or models."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
