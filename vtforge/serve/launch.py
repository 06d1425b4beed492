"""Choosing how to serve a model, handing over to ``vllm serve`` on a GPU, and VT Code's snippet."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

BACKENDS = ("auto", "llama.cpp", "transformers", "vllm")


def vllm_usable() -> bool:
    """vLLM is installed and CUDA is up (never imports vllm itself)."""
    if importlib.util.find_spec("vllm") is None or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose_backend(requested: str, *, has_gguf: bool) -> str:
    """``auto``: vLLM on a GPU machine that has it, else llama.cpp for GGUF, else transformers."""
    if requested != "auto":
        return requested
    if vllm_usable():
        return "vllm"
    return "llama.cpp" if has_gguf else "transformers"


def vllm_argv(folder: Path, *, host: str, port: int, served_name: str) -> list[str]:
    """``vllm serve <hf folder>`` on our host and port, answering to the same model id."""
    beside = Path(sys.executable).with_name("vllm")
    binary = shutil.which("vllm") or (str(beside) if beside.is_file() else None)
    prefix = [binary] if binary else [sys.executable, "-m", "vllm.entrypoints.cli.main"]
    return [
        *prefix,
        "serve",
        str(folder),
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        served_name,
    ]


def vtcode_snippet(base_url: str, model: str, provider: str = "vtforge") -> str:
    """What to paste into VT Code's user config, and the two workspace keys that select it."""
    return "\n".join(
        [
            "# ~/.config/vtcode/vtcode.toml (user config): the local endpoint as a provider",
            "[[custom_providers]]",
            f'name = "{provider}"',
            f'base_url = "{base_url}"',
            'api_format = "openai-chat"',
            "",
            "# the workspace vtcode.toml: use it",
            "[agent]",
            f'provider = "{provider}"',
            f'default_model = "{model}"',
        ]
    )
