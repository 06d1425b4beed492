"""Any OpenAI-compatible chat endpoint: ``vllm serve``, TRL's vLLM server, hosted APIs, ours.

Requests go out ``concurrency`` at a time; connection errors, 429 and 5xx are retried with
exponential backoff (honouring ``Retry-After``), up to ``retries`` times, then reported as an error
completion.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from vtforge.selfplay.engines.base import Completion, Engine, Request

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIEngine(Engine):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        retries: int = 3,
        timeout_s: float = 600.0,
        backoff_s: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = max(1, concurrency)
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(30.0, timeout_s)),
            limits=httpx.Limits(max_connections=self.concurrency),
        )

    @classmethod
    def from_config(cls, selfplay: Any) -> OpenAIEngine:
        if not selfplay.engine_base_url:
            raise ValueError("forge.selfplay.engine_base_url must be set for engine = openai")
        return cls(
            selfplay.engine_base_url,
            selfplay.engine_model or "default",
            api_key=os.environ.get(selfplay.engine_api_key_env),
            concurrency=selfplay.engine_concurrency,
            retries=selfplay.engine_retries,
            timeout_s=selfplay.engine_timeout_s,
        )

    def _one(self, request: Request) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "n": 1,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        started = time.monotonic()
        error = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.client.post("/chat/completions", json=body)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRY_STATUSES:
                error = f"HTTP {response.status_code}: {response.text[:300]}"
                retry_after = response.headers.get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    time.sleep(min(float(retry_after), 30.0))
                continue
            if response.status_code >= 400:
                error = f"HTTP {response.status_code}: {response.text[:300]}"
                break
            try:
                data = response.json()
                choice = data["choices"][0]
                message = choice.get("message") or {}
                usage = data.get("usage") or {}
                return Completion(
                    text=message.get("content") or "",
                    reasoning=message.get("reasoning_content") or message.get("reasoning"),
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                    latency_ms=(time.monotonic() - started) * 1000,
                    stop_reason=str(choice.get("finish_reason") or "stop"),
                    model=str(data.get("model") or self.model),
                )
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                error = f"malformed response: {exc}"
                break
        return Completion(
            text="",
            latency_ms=(time.monotonic() - started) * 1000,
            stop_reason="error",
            model=self.model,
            error=error,
        )

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def close(self) -> None:
        self.client.close()
