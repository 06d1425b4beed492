"""In-process engines: ``transformers`` (a local model directory, CPU or GPU) and ``vllm``.

Both apply the model's chat template to the messages. Greedy decoding at temperature 0, sampling
otherwise (full distribution: ``top_p = 1``, no top-k). ``transformers`` generates requests in
batches (left padding); a request that cannot fit the model's window is refused with an error
completion. ``vllm`` needs the ``vllm`` package and a GPU; it is imported only when chosen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from vtforge.selfplay.engines.base import Completion, Engine, Message, Request


class TransformersEngine(Engine):
    """A Hugging Face folder, ``batch_size`` requests generated together.

    Requests are grouped by temperature (greedy apart from sampled, one temperature per group) and
    by prompt length (neighbours pad little), then generated ``batch_size`` at a time with left
    padding, so every row's new tokens start at the same column. A sampled batch is seeded with its
    first request's seed: a per-request seed is exact only when a batch holds one request.
    """

    name = "transformers"

    def __init__(
        self,
        model_dir: str,
        *,
        model: Any = None,
        tokenizer: Any = None,
        device: str | None = None,
        batch_size: int = 8,
        model_name: str | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model_name or str(model_dir)
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.lm = (model or AutoModelForCausalLM.from_pretrained(model_dir)).to(self.device)
        self.lm.eval()
        self.batch_size = max(1, batch_size)
        window = getattr(self.lm.config, "max_position_embeddings", None)
        self.context_window = int(window) if window else None
        eos = self.lm.generation_config.eos_token_id
        self._eos = {int(t) for t in (eos if isinstance(eos, list) else [eos]) if t is not None}
        if self.tokenizer.eos_token_id is not None:
            self._eos.add(int(self.tokenizer.eos_token_id))
        self._torch = torch

    def _prompt(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        return len(self.tokenizer(self._prompt(messages))["input_ids"])

    def _batch(self, requests: Sequence[Request]) -> list[Completion]:
        """One ``generate`` call for requests of one temperature, left-padded to one length."""
        torch = self._torch
        started = time.monotonic()
        prompts = [self._prompt(r.messages) for r in requests]
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        width = int(inputs["input_ids"].shape[1])
        temperature = requests[0].temperature
        kwargs: dict[str, Any] = {"max_new_tokens": max(r.max_tokens for r in requests)}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
            seed = requests[0].seed
            if seed is not None:
                torch.manual_seed(seed)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            output = self.lm.generate(**inputs, **kwargs, pad_token_id=self.tokenizer.pad_token_id)
        elapsed = (time.monotonic() - started) * 1000 / len(requests)
        out = []
        for row, request in enumerate(requests):
            new = [int(t) for t in output[row, width:]][: request.max_tokens]
            stop = next((i for i, t in enumerate(new) if t in self._eos), None)
            kept = new if stop is None else new[: stop + 1]
            out.append(
                Completion(
                    text=self.tokenizer.decode(kept, skip_special_tokens=True),
                    prompt_tokens=int(inputs["attention_mask"][row].sum()),
                    completion_tokens=len(kept),
                    latency_ms=elapsed,
                    stop_reason="length" if stop is None else "stop",
                    model=self.model,
                )
            )
        return out

    def _groups(self, requests: Sequence[Request]) -> list[list[int]]:
        """Indices to generate together: one temperature, similar lengths, ``batch_size`` at most."""
        lengths = {i: sum(len(m["content"]) for m in r.messages) for i, r in enumerate(requests)}
        by_temperature: dict[float, list[int]] = {}
        for i, r in enumerate(requests):
            by_temperature.setdefault(max(0.0, r.temperature), []).append(i)
        groups = []
        for indices in by_temperature.values():
            indices.sort(key=lambda i: (lengths[i], i))
            groups += [indices[k : k + self.batch_size] for k in range(0, len(indices), self.batch_size)]
        return groups

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Completion]]:
        fits: list[int] = []
        for i, request in enumerate(requests):
            error = self._refusal(request)
            if error is not None:
                yield i, error
            else:
                fits.append(i)
        chosen = [requests[i] for i in fits]
        for group in self._groups(chosen):
            batch = [chosen[k] for k in group]
            try:
                completions = self._batch(batch)
            except Exception as exc:  # a model error is one bad batch of completions, not a crashed run
                completions = [
                    Completion(text="", stop_reason="error", model=self.model, error=repr(exc)[:500])
                    for _ in batch
                ]
            for k, completion in zip(group, completions, strict=True):
                yield fits[k], completion

    def _refusal(self, request: Request) -> Completion | None:
        """An error completion for a request that cannot fit the model's window, else ``None``."""
        if self.context_window is None:
            return None
        try:
            need = (self.count_tokens(request.messages) or 0) + request.max_tokens
        except Exception as exc:
            return Completion(text="", stop_reason="error", model=self.model, error=repr(exc)[:500])
        if need <= self.context_window:
            return None
        return Completion(
            text="",
            stop_reason="error",
            model=self.model,
            error=(
                f"prompt + max_tokens {request.max_tokens} = {need} tokens exceed the context window "
                f"of {self.context_window}"
            ),
        )

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        for index, completion in self.generate_stream(requests):
            out[index] = completion
        return [c for c in out if c is not None]


class VLLMEngine(Engine):
    name = "vllm"

    def __init__(self, model_dir: str, **llm_kwargs: Any) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ValueError(
                "engine = vllm needs the vllm package (a GPU machine): pip install vllm"
            ) from exc
        self.model = str(model_dir)
        self.llm = LLM(model=model_dir, **llm_kwargs)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        from vllm import SamplingParams

        started = time.monotonic()
        params = [
            SamplingParams(temperature=r.temperature, max_tokens=r.max_tokens, seed=r.seed) for r in requests
        ]
        outputs = self.llm.chat([r.messages for r in requests], params, use_tqdm=False)
        elapsed = (time.monotonic() - started) * 1000 / max(1, len(requests))
        out = []
        for result in outputs:
            first = result.outputs[0]
            out.append(
                Completion(
                    text=first.text,
                    prompt_tokens=len(result.prompt_token_ids or []),
                    completion_tokens=len(first.token_ids),
                    latency_ms=elapsed,
                    stop_reason=str(first.finish_reason or "stop"),
                    model=self.model,
                )
            )
        return out
