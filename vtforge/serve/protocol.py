"""The OpenAI Chat Completions wire format: request validation and response bodies.

Validation is lenient where clients differ and strict where a wrong value would silently change
what is generated. Fields that cannot change a local model's text (``tools``, ``tool_choice``,
``user``, ``stream_options``, ``response_format`` …) are accepted and ignored; tools may come
nested (``{"type": "function", "function": {"name": …}}``) or flat as VT Code sends them
(``{"type": "function", "name": …}``) and are normalised to the nested shape. A bad value is a
``BadRequest`` that names the field, answered with HTTP 400.

A model that was offered tools and writes ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``
(the form earlier calls are shown to it in, and the form the corpus renders VT Code's tool calls
in) gets them back as OpenAI ``tool_calls`` with ``finish_reason`` ``tool_calls``: what VT Code
needs to run a tool. Only names among the offered tools count; anything else stays text.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_STOP_SEQUENCES = 4


class BadRequest(ValueError):
    """A request the server refuses; ``param`` is the offending field (OpenAI's ``error.param``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    """One validated chat completion request, in the form every backend takes."""

    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stream: bool = False
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    model: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)  # normalised; not used by the backends


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(key, f"must be a number, got {json.dumps(value)}")
    if not low <= value <= high:
        raise BadRequest(key, f"must be between {low:g} and {high:g}, got {value}")
    return float(value)


def _integer(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(key, f"must be an integer, got {json.dumps(value)}")
    return value


def _content(value: Any, where: str) -> str:
    """A message's content as text: a string, null, or a list of text parts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for j, part in enumerate(value):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                raise BadRequest(f"{where}[{j}]", "only text parts are supported")
        return "".join(texts)
    raise BadRequest(where, "must be a string, null or a list of text parts")


def _tool_call_text(call: Any, where: str) -> str:
    """An earlier assistant tool call, written into the transcript the way ChatML models read it."""
    if not isinstance(call, dict):
        raise BadRequest(where, "must be an object")
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    name = function.get("name")
    if not isinstance(name, str):
        raise BadRequest(f"{where}.function.name", "required, a string")
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return f'<tool_call>{{"name": {json.dumps(name)}, "arguments": {arguments}}}</tool_call>'


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise BadRequest("messages", "required, a non-empty list of messages")
    out = []
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadRequest(where, "must be an object with role and content")
        role = message.get("role")
        if role not in ROLES:
            raise BadRequest(f"{where}.role", f"must be one of {', '.join(sorted(ROLES))}, got {role!r}")
        text = _content(message.get("content"), f"{where}.content")
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise BadRequest(f"{where}.tool_calls", "must be a list")
        parts = [text] if text else []
        parts += [_tool_call_text(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls)]
        out.append({"role": "system" if role == "developer" else role, "content": "\n".join(parts)})
    return out


def normalise_tools(value: Any) -> list[dict[str, Any]]:
    """Tools in the nested OpenAI shape, whether they came nested or flat (VT Code)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest("tools", "must be a list")
    tools = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools[{i}]", "must be an object")
        function = tool.get("function")
        if not isinstance(function, dict):  # flat: name, description, parameters beside type
            function = {k: v for k, v in tool.items() if k in ("name", "description", "parameters", "strict")}
        if isinstance(function.get("name"), str):  # a tool kind without a name (web search …) is not ours
            tools.append({"type": "function", "function": function})
    return tools


def parse_chat_request(body: Any, *, default_max_tokens: int) -> ChatRequest:
    """Validate a decoded JSON body; raises ``BadRequest`` naming the first bad field."""
    if not isinstance(body, dict):
        raise BadRequest("body", "must be a JSON object")
    messages = _messages(body.get("messages"))
    max_tokens = _integer(body, "max_completion_tokens")
    max_tokens = max_tokens if max_tokens is not None else _integer(body, "max_tokens")
    if max_tokens is not None and max_tokens < 1:
        key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        raise BadRequest(key, f"must be at least 1, got {max_tokens}")
    n = _integer(body, "n")
    if n not in (None, 1):
        raise BadRequest("n", f"only 1 choice per request is supported, got {n}")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest("stream", f"must be true or false, got {json.dumps(stream)}")
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise BadRequest("stop", "must be a string or a list of strings")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise BadRequest("stop", f"at most {MAX_STOP_SEQUENCES} sequences, got {len(stops)}")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("model", "must be a string")
    return ChatRequest(
        messages=messages,
        max_tokens=max_tokens or default_max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        stream=bool(stream),
        stop=[s for s in stops if s],
        seed=_integer(body, "seed"),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        model=model,
        tools=normalise_tools(body.get("tools")),
    )


def split_tool_calls(text: str, tools: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(text without the calls, OpenAI ``tool_calls``) of a completion; no tools offered → none."""
    offered = {t["function"]["name"] for t in tools if isinstance(t.get("function"), dict)}
    if not offered or "<tool_call>" not in text:
        return text, []
    calls: list[dict[str, Any]] = []

    def take(match: re.Match[str]) -> str:
        try:
            value = json.loads(match[1])
        except json.JSONDecodeError:
            return match[0]
        name = value.get("name") if isinstance(value, dict) else None
        if name not in offered:
            return match[0]
        arguments = value.get("arguments", {})
        calls.append(
            {
                "id": f"call_{uuid.uuid4().hex[:16]}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
        )
        return ""

    rest = _TOOL_CALL.sub(take, text)
    return (rest.strip() if calls else text), calls


def error_body(message: str, *, param: str | None = None, kind: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion_body(
    cid: str,
    model: str,
    text: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if tool_calls else "")}
    if tool_calls:
        message["tool_calls"] = tool_calls
        finish_reason = "tool_calls"
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chunk_body(cid: str, model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
