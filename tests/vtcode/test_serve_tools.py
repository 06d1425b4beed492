"""``vtforge serve`` answers VT Code's requests: flat tools in, OpenAI ``tool_calls`` out.

The request bodies are shaped like the ones the real vtcode 0.169.2 sent (tools.json of a
recording: flat and nested at once); a stand-in backend writes what a model would.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.vtcode.recordings import Recording
from vtforge.serve import Backend, ChatRequest, ModelServer
from vtforge.serve.backends import Generation

CALL = '<tool_call>{"name": "exec_command", "arguments": {"cmd": "python -m pytest -q"}}</tool_call>'


class _Writes(Backend):
    """Answers every request with a fixed text (and keeps what it was asked)."""

    kind = "stand-in"

    def __init__(self, text: str) -> None:
        super().__init__("smollm2-135m")
        self.text = text
        self.requests: list[ChatRequest] = []

    def complete(self, request: ChatRequest) -> Generation:
        self.requests.append(request)
        return Generation(self.text, "stop", 10, 5)


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[ModelServer, _Writes]]:
    backend = _Writes(request.param)
    server = ModelServer(backend).start()
    try:
        yield server, backend
    finally:
        server.stop()


def _body(stream: bool) -> dict[str, Any]:
    tools = json.loads((Recording("exec_fix").dir / "tools.json").read_text())
    return {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Fix the failing test in calc.py"}],
        "tools": tools,
        "stream": stream,
        "max_tokens": 2000,
        "temperature": 0.7,
    }


def _post(url: str, body: dict[str, Any]) -> bytes:
    request = urllib.request.Request(
        f"{url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


@pytest.mark.parametrize("served", [f"Running the tests.\n{CALL}"], indirect=True)
def test_tool_call_comes_back_as_tool_calls(served: tuple[ModelServer, _Writes]) -> None:
    server, backend = served
    reply = json.loads(_post(server.base_url, _body(stream=False)))
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Running the tests."
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "exec_command"
    assert json.loads(call["function"]["arguments"]) == {"cmd": "python -m pytest -q"}
    names = [t["function"]["name"] for t in backend.requests[0].tools]
    assert names == ["exec_command", "write_stdin", "apply_patch", "code_search"]


@pytest.mark.parametrize("served", [CALL], indirect=True)
def test_streamed_tool_call_is_assembled_like_openai(served: tuple[ModelServer, _Writes]) -> None:
    server, _ = served
    raw = _post(server.base_url, _body(stream=True)).decode()
    events = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert [(c["index"], c["function"]["name"]) for c in calls] == [(0, "exec_command")]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "served", ['<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'], indirect=True
)
def test_a_tool_that_was_not_offered_stays_text(served: tuple[ModelServer, _Writes]) -> None:
    server, _ = served
    choice = json.loads(_post(server.base_url, _body(stream=False)))["choices"][0]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    assert "rm_rf" in choice["message"]["content"]
