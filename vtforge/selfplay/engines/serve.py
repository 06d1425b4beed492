"""A small OpenAI-compatible server around a local transformers model (CPU is fine).

For tests and CPU demos of the ``openai`` engine: ``POST /v1/chat/completions`` and
``GET /v1/models``, one request at a time per model (generation holds a lock), on 127.0.0.1.
For real serving use ``vllm serve``; this exists so the HTTP path is exercised end to end without
a GPU.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vtforge.selfplay.engines.base import Engine, Request


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found"}})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            request = Request(
                messages=[{"role": m["role"], "content": m["content"]} for m in body["messages"]],
                temperature=float(body.get("temperature", 1.0)),
                max_tokens=int(body.get("max_tokens") or 64),
                seed=body.get("seed"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, {"error": {"message": f"bad request: {exc}"}})
            return
        with self.server.lock:
            self.server.requests += 1
            (completion,) = self.server.engine.generate([request])
        if completion.error:
            self._send(500, {"error": {"message": completion.error}})
            return
        self._send(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.server.model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": completion.text},
                        "finish_reason": completion.stop_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "total_tokens": completion.prompt_tokens + completion.completion_tokens,
                },
            },
        )


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, engine: Engine, *, host: str = "127.0.0.1", port: int = 0, model_name: str = "local"):
        super().__init__((host, port), _Handler)
        self.engine = engine
        self.model_name = model_name
        self.lock = threading.Lock()
        self.requests = 0
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ModelServer:
        self._thread = threading.Thread(target=self.serve_forever, name="vtforge-model-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
