"""The HTTP side of ``vtforge serve``: OpenAI Chat Completions on the standard library.

``POST /v1/chat/completions`` (JSON, or server-sent events with ``stream: true``),
``GET /v1/models`` and ``GET /health``. Requests are handled on threads, so ``/health`` answers
while a completion runs, but generation holds one lock: one request at a time per model, which is
what a CPU can do anyway. HTTP/1.1 with keep-alive; streams use chunked transfer encoding.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vtforge.selfplay.engines.base import Engine
from vtforge.serve.backends import Backend, EngineBackend
from vtforge.serve.protocol import (
    BadRequest,
    chunk_body,
    completion_body,
    completion_id,
    error_body,
    parse_chat_request,
    split_tool_calls,
)

MAX_BODY_BYTES = 64 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer  # type: ignore[assignment]  # socketserver sets it; ours is a ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        path = self._route()
        model = self.server.backend.model_id
        if path in ("/v1/models", "/models"):
            entry = {"id": model, "object": "model", "created": self.server.started, "owned_by": "vtforge"}
            self._send(200, {"object": "list", "data": [entry]})
        elif path == "/health":
            self._send(200, {"status": "ok", "model": model, "backend": self.server.backend.kind})
        else:
            self._send(404, error_body(f"no route GET {path}", kind="not_found_error"))

    def _body(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise BadRequest("body", "a JSON body with a Content-Length header is required")
        if int(length) > MAX_BODY_BYTES:
            raise BadRequest("body", f"larger than {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadRequest("body", f"not valid JSON ({exc})") from None

    def do_POST(self) -> None:
        path = self._route()
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, error_body(f"no route POST {path}", kind="not_found_error"))
            return
        try:
            request = parse_chat_request(self._body(), default_max_tokens=self.server.default_max_tokens)
        except BadRequest as exc:
            self.close_connection = True  # the body may not have been read to its end
            self._send(400, error_body(str(exc), param=exc.param))
            return
        cid, model = completion_id(), self.server.backend.model_id
        with self.server.lock:
            self.server.requests += 1
            try:
                if request.stream:
                    deltas = self.server.backend.stream(request)
                    if request.tools:  # a tool call is only known once the text is complete
                        deltas = _with_tool_calls(deltas, request.tools)
                    self._stream(cid, model, deltas)
                    return
                generation = self.server.backend.complete(request)
            except BadRequest as exc:
                self._send(400, error_body(str(exc), param=exc.param))
                return
            except Exception as exc:  # a model failure is one failed request, not a dead server
                self._send(500, error_body(f"{type(exc).__name__}: {exc}"[:500], kind="server_error"))
                return
        text, calls = split_tool_calls(generation.text, request.tools)
        self._send(
            200,
            completion_body(
                cid,
                model,
                text,
                generation.finish_reason,
                generation.prompt_tokens,
                generation.completion_tokens,
                tool_calls=calls,
            ),
        )

    def _event(self, payload: dict[str, Any] | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        event = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.flush()

    def _stream(self, cid: str, model: str, deltas: Any) -> None:
        """Server-sent events; the first piece is generated before the headers, so a prompt that
        does not fit is still a plain HTTP 400."""
        first = next(deltas)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._event(chunk_body(cid, model, {"role": "assistant", "content": ""}))
            for delta in itertools.chain([first], deltas):
                if delta.text:
                    self._event(chunk_body(cid, model, {"content": delta.text}))
                for index, call in enumerate(getattr(delta, "tool_calls", None) or []):
                    self._event(chunk_body(cid, model, {"tool_calls": [{"index": index, **call}]}))
                if delta.finish_reason:
                    self._event(chunk_body(cid, model, {}, delta.finish_reason))
        except (BrokenPipeError, ConnectionResetError):  # the client left: stop generating
            deltas.close()
            self.close_connection = True
            return
        except Exception as exc:  # headers are sent: the error goes into the stream
            self._event(error_body(f"{type(exc).__name__}: {exc}"[:500], kind="server_error"))
        self._event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@dataclass
class _CallDelta:
    """A stream piece that may carry OpenAI tool calls (the backends' ``Delta`` carries text)."""

    text: str = ""
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def _with_tool_calls(deltas: Iterator[Any], tools: list[dict[str, Any]]) -> Iterator[Any]:
    """Hold the text back until the end, then send it with the tool calls it contains."""
    text, finish = [], "stop"
    for number, delta in enumerate(deltas):
        text.append(delta.text)
        finish = delta.finish_reason or finish
        if number == 0:  # the first piece: a prompt that does not fit has failed by now (a 400)
            yield _CallDelta()
    content, calls = split_tool_calls("".join(text), tools)
    yield _CallDelta(content, None, calls)
    yield _CallDelta(finish_reason="tool_calls" if calls else finish)


class ModelServer(ThreadingHTTPServer):
    """One model behind an OpenAI-compatible endpoint; ``start()`` serves it on a daemon thread."""

    daemon_threads = True

    def __init__(
        self,
        backend: Backend | Engine,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str | None = None,
        default_max_tokens: int = 1024,
    ) -> None:
        if isinstance(backend, Engine):
            backend = EngineBackend(backend, model_id=model_name)
        elif model_name:
            backend.model_id = model_name
        super().__init__((host, port), _Handler)
        self.backend = backend
        self.default_max_tokens = default_max_tokens
        self.lock = threading.Lock()
        self.requests = 0
        self.started = int(time.time())
        self._thread: threading.Thread | None = None

    @property
    def model_name(self) -> str:
        return self.backend.model_id

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
