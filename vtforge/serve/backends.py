"""What generates behind ``vtforge serve``: llama.cpp for GGUF files, any ``Engine`` otherwise.

``LlamaCppBackend`` streams token by token (``Llama.create_chat_completion(stream=True)``) and
keeps llama.cpp's prompt cache between requests, so an agent's growing conversation is evaluated
only from where it changed. ``EngineBackend`` wraps a vtforge ``Engine`` (the ``transformers``
engine for a Hugging Face folder): it generates the whole completion and streams it as one chunk.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtforge.selfplay.engines.base import Engine, Request
from vtforge.serve.protocol import BadRequest, ChatRequest

MIN_CONTEXT_TOKENS = 256


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Delta:
    """One streamed piece: text, or (last) the finish reason."""

    text: str = ""
    finish_reason: str | None = None


class BackendError(RuntimeError):
    """The model failed on a valid request (HTTP 500)."""


class Backend(abc.ABC):
    kind: str = "abstract"

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    @abc.abstractmethod
    def complete(self, request: ChatRequest) -> Generation:
        """The whole completion."""

    def stream(self, request: ChatRequest) -> Iterator[Delta]:
        """Text pieces, then one ``Delta`` with the finish reason; by default the whole text at once."""
        generation = self.complete(request)
        if generation.text:
            yield Delta(generation.text)
        yield Delta(finish_reason=generation.finish_reason)

    def close(self) -> None:  # noqa: B027 - optional
        """Release the model."""


def _context_error(exc: ValueError) -> BadRequest | None:
    """llama.cpp's "Requested tokens (N) exceed context window of M" is the client's to fix (400)."""
    if "context window" not in str(exc):
        return None
    return BadRequest("messages", f"the prompt is too long: {exc}")


class LlamaCppBackend(Backend):
    """A GGUF file on llama.cpp (CPU); sampling as OpenAI defines it: no top-k, no min-p."""

    kind = "llama.cpp"

    def __init__(
        self, gguf: str | Path, *, model_id: str | None = None, context_tokens: int = 0, threads: int = 0
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise BackendError("llama.cpp needs llama-cpp-python: pip install 'vtforge[model]'") from exc
        super().__init__(model_id or Path(gguf).stem)
        self.path = Path(gguf)
        # llama.cpp pads a context below 256 up to 256, but llama-cpp-python sizes its token buffer by
        # the number asked for, and then fails on long prompts with a numpy error: ask for >= 256.
        n_ctx = max(context_tokens, MIN_CONTEXT_TOKENS) if context_tokens else 0
        self.llm = Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=threads or None, verbose=False)

    def _kwargs(self, request: ChatRequest) -> dict[str, Any]:
        return {
            "messages": request.messages,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "top_k": 0,
            "min_p": 0.0,
            "max_tokens": request.max_tokens,
            "stop": request.stop or None,
            "seed": request.seed,
            "frequency_penalty": request.frequency_penalty,
            "presence_penalty": request.presence_penalty,
        }

    def complete(self, request: ChatRequest) -> Generation:
        try:
            result = self.llm.create_chat_completion(**self._kwargs(request))
        except ValueError as exc:
            raise _context_error(exc) or BackendError(str(exc)) from exc
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return Generation(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def stream(self, request: ChatRequest) -> Iterator[Delta]:
        chunks = self.llm.create_chat_completion(stream=True, **self._kwargs(request))
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                content = choice["delta"].get("content")
                if content:
                    yield Delta(content)
                if choice.get("finish_reason"):
                    yield Delta(finish_reason=choice["finish_reason"])
        except ValueError as exc:
            raise _context_error(exc) or BackendError(str(exc)) from exc
        finally:
            chunks.close()

    def close(self) -> None:
        self.llm.close()


class EngineBackend(Backend):
    """Any vtforge ``Engine`` (one request at a time); ``stop`` is applied to the finished text."""

    def __init__(self, engine: Engine, *, model_id: str | None = None) -> None:
        super().__init__(model_id or engine.model or engine.name)
        self.engine = engine
        self.kind = engine.name

    def _check_fits(self, request: ChatRequest) -> None:
        """A prompt the engine would refuse for its length is the client's to fix: 400, not 500."""
        window = getattr(self.engine, "context_window", None)
        count_tokens = getattr(self.engine, "count_tokens", None)
        prompt = count_tokens(request.messages) if window and count_tokens else None
        if prompt is not None and prompt + request.max_tokens > window:
            raise BadRequest(
                "messages",
                f"the prompt is too long: {prompt} prompt tokens + max_tokens {request.max_tokens} "
                f"exceed the context window of {window}",
            )

    def complete(self, request: ChatRequest) -> Generation:
        self._check_fits(request)
        (completion,) = self.engine.generate(
            [
                Request(
                    messages=request.messages,
                    temperature=request.temperature,
                    max_tokens=request.max_tokens,
                    seed=request.seed,
                )
            ]
        )
        if completion.error:
            raise BackendError(completion.error)
        text, finish = completion.text, completion.stop_reason
        cuts = [i for i in (text.find(s) for s in request.stop) if i >= 0]
        if cuts:
            text, finish = text[: min(cuts)], "stop"
        return Generation(text, finish, completion.prompt_tokens, completion.completion_tokens)

    def close(self) -> None:
        self.engine.close()
