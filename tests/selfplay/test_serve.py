"""``vtforge serve``: the real model (SmolLM2-135M on llama.cpp) behind an OpenAI-compatible endpoint.

One server per module on a free port; every generation is bounded (max_tokens <= 32).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vtforge import constants as C
from vtforge.selfplay.engines.base import Request
from vtforge.selfplay.engines.openai_engine import OpenAIEngine

MODEL = C.DEFAULT_MODEL
PROMPT = [{"role": "user", "content": "Write a Python function that adds two numbers."}]

# What VT Code sends: flat tool definitions, a tool call in the history and its result.
VTCODE_TOOLS = [
    {
        "type": "function",
        "name": "read_file",
        "description": "Read a file from the workspace.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
    {"type": "function", "name": "apply_patch", "parameters": {"type": "object", "properties": {}}},
]


@pytest.fixture(scope="module")
def server(real_model_gguf: Path) -> Iterator[Any]:
    from vtforge.serve import LlamaCppBackend, ModelServer

    served = ModelServer(LlamaCppBackend(real_model_gguf, model_id=MODEL), default_max_tokens=32).start()
    yield served
    served.stop()
    served.backend.close()


def _stream(url: str, body: dict[str, Any]) -> list[str]:
    """The ``data:`` payloads of a server-sent-events response, in order."""
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


@pytest.mark.slow
def test_openai_engine_gets_a_completion(server: Any) -> None:
    engine = OpenAIEngine(server.base_url, MODEL, api_key="local", retries=0)
    before = server.requests
    (out,) = engine.generate([Request(messages=PROMPT, temperature=0.0, max_tokens=16)])
    engine.close()
    assert out.error is None, out.error
    assert out.text.strip() != ""
    assert out.model == MODEL
    assert out.prompt_tokens > 0 and 0 < out.completion_tokens <= 16
    assert out.stop_reason in ("stop", "length")
    assert server.requests == before + 1


@pytest.mark.slow
def test_stream_chunks_add_up_to_the_greedy_completion(server: Any) -> None:
    body = {"model": MODEL, "messages": PROMPT, "temperature": 0, "max_tokens": 24}
    whole = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120).json()
    events = _stream(server.base_url, {**body, "stream": True})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks if c["choices"][0]["delta"].get("content")]
    assert len(pieces) >= 2
    assert "".join(pieces) == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": whole["choices"][0]["finish_reason"],
    }
    assert (
        whole["usage"]["total_tokens"]
        == whole["usage"]["prompt_tokens"] + whole["usage"]["completion_tokens"]
    )


@pytest.mark.slow
def test_models_and_health_name_the_served_model(server: Any) -> None:
    models = httpx.get(f"{server.base_url}/models", timeout=30).json()
    assert [m["id"] for m in models["data"]] == [MODEL]
    assert models["object"] == "list"
    root = server.base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health", timeout=30).json() == {
        "status": "ok",
        "model": MODEL,
        "backend": "llama.cpp",
    }


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_flat_vtcode_tools_are_answered_not_rejected(server: Any, stream: bool) -> None:
    messages = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": [{"type": "text", "text": "Show me main.py"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "main.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "print('hi')"},
    ]
    body = {
        "model": MODEL,
        "messages": messages,
        "tools": VTCODE_TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "stream_options": {"include_usage": True},
        "temperature": 0,
        "max_tokens": 8,
        "stream": stream,
    }
    if stream:
        events = _stream(server.base_url, body)
        assert events[-1] == "[DONE]"
        assert json.loads(events[-2])["choices"][0]["finish_reason"] in ("stop", "length")
    else:
        response = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120)
        assert response.status_code == 200, response.text
        choice = response.json()["choices"][0]
        assert choice["message"]["role"] == "assistant"
        assert choice["finish_reason"] in ("stop", "length")


def test_flat_and_nested_tools_normalise_to_the_same_shape() -> None:
    from vtforge.serve import normalise_tools

    nested = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
    flat = [{"type": "function", "name": "read_file", "parameters": {"type": "object"}}]
    assert normalise_tools(flat) == normalise_tools(nested) == nested
    assert normalise_tools([{"type": "web_search"}]) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ("{not json", "body", "not valid JSON"),
        ([1, 2], "body", "must be a JSON object"),
        ({"model": MODEL}, "messages", "required, a non-empty list"),
        ({"messages": []}, "messages", "required, a non-empty list"),
        ({"messages": ["hi"]}, "messages[0]", "must be an object"),
        ({"messages": [{"role": "usr", "content": "hi"}]}, "messages[0].role", "got 'usr'"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "must be a string"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature", "a number"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": 3}, "temperature", "between 0"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens", "at least 1"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2.5}, "max_tokens", "an integer"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n", "only 1 choice"),
        ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream", "true or false"),
        ({"messages": [{"role": "user", "content": "hi"}], "stop": [1]}, "stop", "list of strings"),
        ({"messages": [{"role": "user", "content": "hi"}], "tools": {"a": 1}}, "tools", "must be a list"),
    ],
)
def test_malformed_bodies_get_a_400_naming_the_field(server: Any, body: Any, param: str, says: str) -> None:
    before = server.requests
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"{param}: ") and says in error["message"]
    assert server.requests == before  # nothing was generated


@pytest.mark.slow
def test_a_prompt_longer_than_the_context_is_a_400_even_when_streamed(real_model_gguf: Path) -> None:
    from vtforge.serve import LlamaCppBackend, ModelServer

    small = ModelServer(LlamaCppBackend(real_model_gguf, model_id=MODEL, context_tokens=64)).start()
    try:
        body = {"messages": [{"role": "user", "content": "word " * 300}], "max_tokens": 4, "stream": True}
        response = httpx.post(f"{small.base_url}/chat/completions", json=body, timeout=60)
    finally:
        small.stop()
        small.backend.close()
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"
    assert "exceed context window of 256" in response.json()["error"]["message"]


@pytest.mark.slow
def test_transformers_backend_streams_one_chunk_and_refuses_a_prompt_too_long(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    pytest.importorskip("transformers", reason="needs the train extra (transformers)")
    from vtforge.selfplay.engines.local_engines import TransformersEngine
    from vtforge.serve import ModelServer
    from vtforge.trainers.tiny import tiny_model, train_tokenizer

    tokenizer = train_tokenizer(["def add(a, b):\n    return a + b\n"])
    tiny_model(tokenizer, seed=0, max_positions=64).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    server = ModelServer(TransformersEngine(str(tmp_path / "tiny"), device="cpu"), model_name="tiny").start()
    try:
        body = {"messages": [{"role": "user", "content": "Fix add"}], "temperature": 0, "max_tokens": 12}
        whole = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120).json()
        events = _stream(server.base_url, {**body, "stream": True})
        long = {**body, "messages": [{"role": "user", "content": "add " * 80}]}
        too_long = httpx.post(f"{server.base_url}/chat/completions", json=long, timeout=120)
    finally:
        server.stop()
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "messages"
    assert too_long.json()["error"]["message"].endswith("exceed the context window of 64")
    text = whole["choices"][0]["message"]["content"]
    assert whole["model"] == "tiny" and whole["usage"]["completion_tokens"] == 12 and text
    chunks = [json.loads(e)["choices"][0] for e in events[:-1]]
    assert events[-1] == "[DONE]"
    assert [c["delta"] for c in chunks] == [{"role": "assistant", "content": ""}, {"content": text}, {}]
    assert chunks[-1]["finish_reason"] == whole["choices"][0]["finish_reason"] == "length"


def test_serve_with_an_unknown_model_names_the_known_ones(workspace: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vtforge", "serve", "--model", "no-such"],
        capture_output=True,
        text=True,
        cwd=workspace,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: --model no-such: not a known model ({MODEL}) and no such path"
    ]


@pytest.mark.slow
def test_serve_command_prints_the_url_and_the_vtcode_snippet_then_serves(
    real_model_gguf: Path, workspace: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "vtforge", "serve", "--model", MODEL, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=workspace,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        printed = []
        while not printed or not printed[-1].startswith("default_model"):
            printed.append(lines.get(timeout=120).rstrip("\n"))
        first = printed[0]
        assert first.startswith(f"serving {MODEL} (llama.cpp, {real_model_gguf}) at http://127.0.0.1:")
        base_url = first.rsplit(" at ", 1)[1]
        assert printed[printed.index("[[custom_providers]]") :] == [
            "[[custom_providers]]",
            'name = "vtforge"',
            f'base_url = "{base_url}"',
            'api_format = "openai-chat"',
            "",
            "# the workspace vtcode.toml: use it",
            "[agent]",
            'provider = "vtforge"',
            f'default_model = "{MODEL}"',
        ]
        assert [m["id"] for m in httpx.get(f"{base_url}/models", timeout=30).json()["data"]] == [MODEL]
    finally:
        process.terminate()
        process.wait(timeout=30)
