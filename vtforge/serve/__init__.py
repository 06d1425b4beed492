"""``vtforge serve``: one local model behind an OpenAI-compatible Chat Completions endpoint.

What VT Code (a ``[[custom_providers]]`` entry with ``api_format = "openai-chat"``), the ``openai``
self-play engine and anything else that speaks the OpenAI API talk to. A GGUF model runs on
llama.cpp (``backends.LlamaCppBackend``), a Hugging Face folder on the ``transformers`` engine
(``backends.EngineBackend``); on a GPU machine with vLLM the command hands over to ``vllm serve``
(``launch.vllm_argv``). The HTTP side (``server.ModelServer``) is the standard library's.
"""

from __future__ import annotations

from vtforge.serve.backends import Backend, BackendError, EngineBackend, LlamaCppBackend
from vtforge.serve.protocol import BadRequest, ChatRequest, normalise_tools, parse_chat_request
from vtforge.serve.server import ModelServer

__all__ = [
    "Backend",
    "BackendError",
    "BadRequest",
    "ChatRequest",
    "EngineBackend",
    "LlamaCppBackend",
    "ModelServer",
    "normalise_tools",
    "parse_chat_request",
]
