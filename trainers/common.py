"""Pieces SFT and GRPO share: the starting policy, device settings and the event sink."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtforge.trainers import runs
from vtforge.trainers.tiny import tiny_model, train_tokenizer

if TYPE_CHECKING:
    from vtforge.config import Config, TrainConfig


@dataclass
class Policy:
    """The model a run starts from and where it came from."""

    model: Any
    tokenizer: Any
    source: str  # "tiny", or the folder it was loaded from
    parent_version: str | None

    @property
    def is_tiny(self) -> bool:
        return self.source == runs.TINY


def model_folder(cfg: Config, model: str) -> Path:
    """The Hugging Face folder ``--model`` stands for: a registry name (``forge.models``, e.g.
    ``smollm2-135m``; a GGUF source is converted once under the data dir), else a local folder or
    ``.gguf`` file (relative to the working directory, then to the workspace).

    Raises ``vtforge.models.ModelError`` (one line: what to install or set) when it cannot be had.
    """
    from vtforge.models import hf_folder, known_models

    if model not in known_models(cfg):
        local = Path(model).expanduser()
        if local.exists():
            model = str(local.resolve())
    return hf_folder(cfg, model).resolve()


def starting_policy(
    model: str | None,
    *,
    corpus: Callable[[], Iterable[str]],
    seed: int,
    fallback: Path | None = None,
    cfg: Config | None = None,
) -> Policy:
    """``model`` (a registry name when ``cfg`` is given, or a local folder), else ``fallback`` when it
    exists, else a fresh tiny model.

    The tiny model's tokenizer is trained on ``corpus()`` (the run's own texts), so it fits the data.
    """
    if model and model != runs.TINY:
        path = model_folder(cfg, model) if cfg is not None else Path(model).expanduser().resolve()
        m, tok = runs.load_pretrained(path)
        return Policy(m, tok, str(path), runs.parent_version(path))
    if model is None and fallback is not None and fallback.is_dir():
        m, tok = runs.load_pretrained(fallback)
        return Policy(m, tok, str(fallback), runs.parent_version(fallback))
    tok = train_tokenizer(corpus())
    return Policy(tiny_model(tok, seed=seed), tok, runs.TINY, None)


def device_args() -> dict[str, Any]:
    """CPU: fp32, no accelerator, no gradient checkpointing (TRL turns it on by default to save GPU
    memory; on a CPU memory is not what runs out, and recomputing activations costs time). GPU: bf16
    where the card supports it."""
    import torch

    if torch.cuda.is_available():
        return {"use_cpu": False, "bf16": torch.cuda.is_bf16_supported(), "fp16": False}
    return {"use_cpu": True, "bf16": False, "fp16": False, "gradient_checkpointing": False}


def common_args(
    train: TrainConfig, *, output_dir: Path, max_steps: int, learning_rate: float, save_steps: int | None
) -> dict[str, Any]:
    """TRL config arguments shared by SFT and GRPO, from ``forge.train`` (``train``)."""
    return {
        "output_dir": str(output_dir),
        "max_steps": max_steps,
        "learning_rate": learning_rate,
        "seed": train.seed,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": save_steps or train.save_steps,
        "save_total_limit": train.save_total_limit,
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        "report_to": list(train.report_to),  # forge.train.report_to: TensorBoard under output_dir/runs
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **device_args(),
    }


@contextmanager
def event_sink(cfg: Config, enabled: bool):
    """``emit`` for training-step events: the configured sink, closed (acknowledged) at the end."""
    if not enabled:
        yield lambda event: None
        return
    from vtforge.trainers.events import PRODUCER
    from vtforge.transport import sink_from_config

    with sink_from_config(cfg, producer=PRODUCER) as sink:
        yield sink.emit
