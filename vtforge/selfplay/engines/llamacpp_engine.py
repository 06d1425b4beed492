"""``llamacpp``: a GGUF model on the CPU through llama.cpp (``llama-cpp-python``, the ``model`` extra).

The model is loaded once per engine. Each request goes through the model's own chat template
(``create_chat_completion``); temperature 0 is greedy, any other temperature samples from the
model's full distribution (``top_k = 0``, ``top_p = 1``, ``min_p = 0``, as vLLM and the OpenAI API
do) with the request's seed, so a sample is reproducible on its own.

A batch runs one request after another, reordered so that requests with the same prompt run back
to back: llama.cpp keeps the KV cache of the last prompt, so a task's second and later samples
skip evaluating the prompt (measured here: 1.4 s instead of 22 s for a 3.5k-token prompt).
``cached_prompt_tokens`` records how many were reused. Only a whole prompt is reused: a prompt that
merely shares a prefix with the cache (the same system prompt) is evaluated from the start, and
always the same way (all but the last token, then the last token alone, which is what reusing a
whole cached prompt does): llama.cpp's numbers depend on how a prompt is split into evaluation
batches, and a greedy completion must not depend on what ran before it.
Completions come back in request order (``generate``) or as they finish (``generate_stream``).

A request whose prompt plus ``max_tokens`` does not fit the context window is refused with an
error completion (nothing raises for one request); self-play trims its prompts to fit beforehand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vtforge.selfplay.engines.base import Completion, Engine, Message, Request


class LlamaCppEngine(Engine):
    name = "llamacpp"

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        seed: int = 0,
        model_name: str | None = None,
    ) -> None:
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            from vtforge.models import ModelError

            raise ModelError(
                "engine = llamacpp needs the llama-cpp-python package (pip install 'vtforge[model]')"
            ) from exc
        path = Path(model_path)
        if not path.is_file():
            raise ValueError(f"engine = llamacpp: GGUF file not found: {path}")
        self.model = model_name or path.stem
        self.seed = seed
        kwargs: dict[str, Any] = {"model_path": str(path), "verbose": False, "seed": seed}
        if n_threads:  # else llama.cpp's default, half the cores: busy cores stall every thread's step
            kwargs["n_threads"] = n_threads
        try:
            self.llm = llama_cpp.Llama(n_ctx=n_ctx, **kwargs)
            trained = int(self.llm._model.n_ctx_train())
            if 0 < trained < n_ctx:  # positions past the training window would only produce noise
                self.llm.close()
                self.llm = llama_cpp.Llama(n_ctx=trained, **kwargs)
        except ValueError as exc:  # llama-cpp-python's word for a file it cannot load
            raise ValueError(f"engine = llamacpp: cannot load {path}: {exc}") from None
        self.context_window = int(self.llm.n_ctx())
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"engine = llamacpp: {path.name} has no chat template (tokenizer.chat_template)")
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self.llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self.llm._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        self._lock = threading.Lock()  # one Llama context: one generation at a time

    # --- tokens ---------------------------------------------------------------------------------
    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The prompt as the chat handler tokenizes it (template, then special tokens parsed)."""
        rendered = self._formatter(messages=[dict(m) for m in messages])
        return self.llm.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        return len(self.prompt_tokens(messages))

    # --- generation -----------------------------------------------------------------------------
    @staticmethod
    def order(requests: Sequence[Request]) -> list[int]:
        """Request indices with equal prompts adjacent (groups in order of first appearance)."""
        first: dict[str, int] = {}
        keys = []
        for i, request in enumerate(requests):
            key = json.dumps(request.messages, sort_keys=True)
            first.setdefault(key, i)
            keys.append(first[key])
        return sorted(range(len(requests)), key=lambda i: (keys[i], i))

    def _one(self, request: Request) -> Completion:
        started = time.monotonic()
        try:
            with self._lock:
                tokens = self.prompt_tokens(request.messages)
                if len(tokens) + request.max_tokens > self.context_window:
                    return self._error(
                        f"prompt of {len(tokens)} tokens + max_tokens {request.max_tokens} exceed the "
                        f"context window of {self.context_window}",
                        started,
                        prompt_tokens=len(tokens),
                    )
                cached = self._cached_prefix(tokens)
                if cached < len(tokens) - 1:  # not this very prompt: evaluate it from the start,
                    self._evaluate_all_but_last(tokens)
                    cached = 0
                sampling: dict[str, Any] = (
                    {"temperature": 0.0}
                    if request.temperature <= 0
                    else {
                        "temperature": request.temperature,
                        "top_k": 0,
                        "top_p": 1.0,
                        "min_p": 0.0,
                        "seed": self.seed if request.seed is None else request.seed,
                    }
                )
                out = self.llm.create_chat_completion(
                    messages=[dict(m) for m in request.messages],
                    max_tokens=request.max_tokens,
                    **sampling,
                )
            choice = out["choices"][0]
            usage = out.get("usage") or {}
            return Completion(
                text=choice["message"].get("content") or "",
                prompt_tokens=int(usage.get("prompt_tokens") or len(tokens)),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                latency_ms=(time.monotonic() - started) * 1000,
                stop_reason=str(choice.get("finish_reason") or "stop"),
                model=self.model,
                cached_prompt_tokens=cached,
            )
        except Exception as exc:  # one failed request is one error completion, never a crashed run
            return self._error(repr(exc)[:500], started)

    def _evaluate_all_but_last(self, tokens: list[int]) -> None:
        """A fresh prompt, evaluated as a reused one is: all but its last token now, then llama.cpp
        evaluates the last token alone when it generates."""
        llm = self.llm
        if llm is None:
            raise RuntimeError("the engine is closed")
        llm.reset()
        if len(tokens) > 1:
            llm.eval(tokens[:-1])

    def _cached_prefix(self, tokens: list[int]) -> int:
        """Prompt tokens llama.cpp will not evaluate again: the prefix shared with its KV cache."""
        held = self.llm.input_ids[: self.llm.n_tokens].tolist()
        shared = 0
        for a, b in zip(held, tokens, strict=False):
            if a != b:
                break
            shared += 1
        return min(shared, max(0, len(tokens) - 1))  # the last prompt token is always evaluated

    def _error(self, message: str, started: float, *, prompt_tokens: int = 0) -> Completion:
        return Completion(
            text="",
            prompt_tokens=prompt_tokens,
            latency_ms=(time.monotonic() - started) * 1000,
            stop_reason="error",
            model=self.model,
            error=message,
        )

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Completion]]:
        for index in self.order(requests):
            yield index, self._one(requests[index])

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        for index, completion in self.generate_stream(requests):
            out[index] = completion
        return [c for c in out if c is not None]

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None
