"""Engines behind one interface: ``openai``, ``vllm``, ``transformers``, ``llamacpp``, ``replay``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vtforge.selfplay.engines.base import Completion, Engine, Request

if TYPE_CHECKING:
    from vtforge.config import Config

__all__ = ["ENGINES", "Completion", "Engine", "Request", "engine_for_model", "make_engine"]

ENGINES = ("openai", "vllm", "transformers", "llamacpp", "replay")


def _is_registered(cfg: Config, name: str) -> bool:
    from vtforge.models import known_models

    return name in known_models(cfg)


def _local_model(cfg: Config, model: str | None) -> str:
    """transformers/vllm: a ``forge.models`` name or a local path → a Hugging Face folder (a GGUF
    source is converted once); any other string is passed on as it is (a model id in a local cache)."""
    from vtforge import constants as C
    from vtforge.models import hf_folder

    name = model or C.DEFAULT_MODEL
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = Path(cfg.root) / path
    if _is_registered(cfg, name) or path.exists():
        return str(hf_folder(cfg, name))
    return name


def engine_for_model(cfg: Config, model: str) -> str:
    """The engine a ``--model`` runs on when no engine is named: a GGUF file → ``llamacpp``, a
    Hugging Face folder → ``transformers``."""
    from vtforge.models import resolve

    return "llamacpp" if resolve(cfg, model).gguf is not None else "transformers"


def make_engine(
    cfg: Config,
    name: str | None = None,
    *,
    replay_file: str | Path | None = None,
    model: str | None = None,
) -> Engine:
    """The engine ``forge.selfplay.engine`` (or ``name``) names, built from config.

    ``model`` (``--model``) overrides ``forge.selfplay.engine_model``: for ``llamacpp``,
    ``transformers`` and ``vllm`` a ``forge.models`` name or a local path (default
    ``smollm2-135m``); for ``openai`` the served model's name. A model that cannot be used here
    raises ``vtforge.models.ModelError`` (a ``ValueError``) whose one line says what to install.
    """
    selfplay = cfg.forge.selfplay
    name = name or selfplay.engine
    model = model or selfplay.engine_model
    if name == "openai":
        from vtforge.selfplay.engines.openai_engine import OpenAIEngine

        engine = OpenAIEngine.from_config(selfplay)
        if model:
            engine.model = model
        return engine
    if name == "llamacpp":
        from vtforge.models import gguf_path, resolve
        from vtforge.selfplay.engines.llamacpp_engine import LlamaCppEngine

        source = resolve(cfg, model)
        return LlamaCppEngine(
            gguf_path(cfg, model),
            n_ctx=min(selfplay.context_tokens, cfg.forge.context.inference_tokens),
            n_threads=selfplay.engine_threads or None,
            model_name=source.name,
        )
    if name in ("transformers", "vllm"):
        folder = _local_model(cfg, model)
        from vtforge.selfplay.engines.local_engines import TransformersEngine, VLLMEngine

        if name == "vllm":
            return VLLMEngine(folder)
        label = model if model and _is_registered(cfg, model) else None
        return TransformersEngine(folder, batch_size=selfplay.engine_batch_size, model_name=label)
    if name == "replay":
        from vtforge.selfplay.engines.replay_engine import ReplayEngine

        source = replay_file or selfplay.replay_file
        if source is None:
            raise ValueError(
                "engine = replay needs a file of recorded completions (--replay or "
                "forge.selfplay.replay_file), or 'warehouse'"
            )
        if str(source) == "warehouse":
            return ReplayEngine.from_warehouse(cfg.duckdb_path)
        path = Path(source)
        if not path.is_absolute():
            path = cfg.root / path
        if not path.is_file():
            raise ValueError(f"replay file not found: {path}")
        return ReplayEngine.from_jsonl(path)
    raise ValueError(f"forge.selfplay.engine must be one of {', '.join(ENGINES)}, got {name!r}")
