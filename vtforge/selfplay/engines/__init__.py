"""Engines behind one interface: ``openai``, ``vllm``, ``transformers``, ``replay``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vtforge.selfplay.engines.base import Completion, Engine, Request

__all__ = ["Completion", "Engine", "Request", "make_engine"]


def make_engine(cfg: Any, name: str | None = None, *, replay_file: str | Path | None = None) -> Engine:
    """The engine ``forge.selfplay.engine`` (or ``name``) names, built from config."""
    selfplay = cfg.forge.selfplay
    name = name or selfplay.engine
    if name == "openai":
        from vtforge.selfplay.engines.openai_engine import OpenAIEngine

        return OpenAIEngine.from_config(selfplay)
    if name in ("transformers", "vllm"):
        if not selfplay.engine_model:
            raise ValueError(f"forge.selfplay.engine_model must name a model directory for engine = {name}")
        from vtforge.selfplay.engines.local_engines import TransformersEngine, VLLMEngine

        return (
            TransformersEngine(selfplay.engine_model)
            if name == "transformers"
            else VLLMEngine(selfplay.engine_model)
        )
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
    raise ValueError(f"forge.selfplay.engine must be one of openai, vllm, transformers, replay, got {name!r}")
