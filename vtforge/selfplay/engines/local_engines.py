"""In-process engines: ``transformers`` (a local model directory, CPU or GPU) and ``vllm``.

Both apply the model's chat template to the messages. Greedy decoding at temperature 0, sampling
otherwise. ``vllm`` needs the ``vllm`` package and a GPU; it is imported only when chosen.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from vtforge.selfplay.engines.base import Completion, Engine, Request


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(
        self, model_dir: str, *, model: Any = None, tokenizer: Any = None, device: str | None = None
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = str(model_dir)
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.lm = (model or AutoModelForCausalLM.from_pretrained(model_dir)).to(self.device)
        self.lm.eval()
        self._torch = torch

    def _one(self, request: Request) -> Completion:
        torch = self._torch
        started = time.monotonic()
        prompt = self.tokenizer.apply_chat_template(
            request.messages, tokenize=False, add_generation_prompt=True
        )
        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": request.max_tokens}
        if request.temperature > 0:
            kwargs.update(do_sample=True, temperature=request.temperature, top_p=1.0)
            if request.seed is not None:
                torch.manual_seed(request.seed)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            output = self.lm.generate(**inputs, **kwargs, pad_token_id=self.tokenizer.pad_token_id)
        new = output[0, inputs["input_ids"].shape[1] :]
        eos = self.tokenizer.eos_token_id
        stopped = bool(len(new)) and int(new[-1]) == eos
        return Completion(
            text=self.tokenizer.decode(new, skip_special_tokens=True),
            prompt_tokens=int(inputs["input_ids"].shape[1]),
            completion_tokens=len(new),
            latency_ms=(time.monotonic() - started) * 1000,
            stop_reason="stop" if stopped else "length",
            model=self.model,
        )

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            try:
                out.append(self._one(request))
            except Exception as exc:  # a model error is one bad completion, not a crashed run
                out.append(Completion(text="", stop_reason="error", model=self.model, error=repr(exc)[:500]))
        return out


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
