"""A scripted OpenAI-compatible model server for driving the real VT Code binary offline.

Test-only. Each ``/v1/chat/completions`` request that carries tools gets the next assistant turn
of a script (tool calls or final text), streamed as Server-Sent Events when the request asks for
``stream`` and as one JSON body otherwise; requests without tools (vtcode's side requests, e.g.
titles or summaries) get a short fixed text and do not consume the script. Every request is kept
(method, path, body) so tests can assert what vtcode sent: its flat tool definitions above all.

A turn is a dict: ``{"tool_calls": [{"name": …, "arguments": {…}}]}``, ``{"content": "…"}``, or
``{"error": 500}`` (an HTTP error, to end a run failed). When the script runs out the last turn
is repeated when ``repeat_last`` is set (a looping model), else a final "done" text is sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "scripted-coder"


@dataclass
class Script:
    """The assistant turns to replay, in order, and what the server saw."""

    turns: list[dict[str, Any]]
    repeat_last: bool = False
    delay_s: float = 0.0  # before each scripted answer (lets a test kill vtcode mid-run)
    requests: list[dict[str, Any]] = field(default_factory=list)
    served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_turn(self) -> dict[str, Any]:
        with self.lock:
            index = self.served
            self.served += 1
        if index < len(self.turns):
            return self.turns[index]
        if self.repeat_last and self.turns:
            return self.turns[-1]
        return {"content": "Done."}


def _tool_calls(turn: dict[str, Any], index: int) -> list[dict[str, Any]]:
    calls = []
    for n, call in enumerate(turn.get("tool_calls", [])):
        arguments = call.get("arguments", {})
        calls.append(
            {
                "id": call.get("id") or f"call_{index}_{n}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
        )
    return calls


def _usage(body: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = len(json.dumps(body.get("messages", []))) // 4  # a stable, content-derived count
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send_json(self, status: int, value: dict[str, Any]) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.script.requests.append({"method": "GET", "path": self.path, "body": None})
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"unparsed": raw.decode("utf-8", "replace")}
        script = self.server.script
        entry: dict[str, Any] = {"method": "POST", "path": self.path, "body": body}
        script.requests.append(entry)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if body.get("tools"):
            index = script.served
            turn = script.next_turn()
            entry["served_turn"] = index
        else:
            index, turn = -1, {"content": "Fix calc.add"}
        if script.delay_s and index >= 0:
            time.sleep(script.delay_s)
        if "error" in turn:
            self._send_json(
                int(turn["error"]), {"error": {"message": "scripted failure", "type": "server_error"}}
            )
            return
        calls = _tool_calls(turn, index)
        content = turn.get("content")
        finish = "tool_calls" if calls else "stop"
        usage = _usage(body, 7 + 5 * len(calls))
        created = 1_700_000_000 + max(index, 0)
        if body.get("stream"):
            self._stream(f"chatcmpl-{index}", created, content, calls, finish, usage)
            return
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        self._send_json(
            200,
            {
                "id": f"chatcmpl-{index}",
                "object": "chat.completion",
                "created": created,
                "model": MODEL,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            },
        )

    def _stream(
        self,
        ident: str,
        created: int,
        content: str | None,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, int],
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> None:
            value = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
            self.wfile.write(b"data: " + json.dumps(value).encode() + b"\n\n")
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        if content:
            for start in range(0, len(content), 24):
                chunk({"content": content[start : start + 24]})
        for n, call in enumerate(calls):
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": n,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), 40):
                chunk(
                    {"tool_calls": [{"index": n, "function": {"arguments": arguments[start : start + 40]}}]}
                )
        chunk({}, finish)
        final = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL}
        final.update({"choices": [], "usage": usage})
        self.wfile.write(b"data: " + json.dumps(final).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: Script


@contextmanager
def serve(script: Script, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run the server in a thread; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    server = _Server((host, port), _Handler)
    server.script = script
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
