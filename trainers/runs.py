"""Where a training run lives, its policy version, and which model it starts from.

Each run gets a new policy version (``sft-20261128T010203Z-1a2b``: trainer, UTC time, a short
random tail) and a folder ``<data_dir>/trainers/<policy_version>/`` holding the TRL checkpoints,
``final/`` (model and tokenizer), ``run.json`` (the summary) and ``truncation.jsonl``.
``<data_dir>/trainers/latest.json`` points at the latest run of each trainer: ``vtforge train grpo``
starts from the latest SFT policy when no ``--model`` is given (cold start, then RL), and
``vtforge gates`` reports on the latest policy by default; ``arms`` holds the latest policy of each
recipe arm (``vtforge recipe run``).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TINY = "tiny"


def new_policy_version(trainer: str) -> str:
    return f"{trainer}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RunDir:
    root: Path
    policy_version: str

    @property
    def checkpoints(self) -> Path:
        return self.root

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def summary(self) -> Path:
        return self.root / "run.json"

    @property
    def truncation_log(self) -> Path:
        return self.root / "truncation.jsonl"


def trainers_dir(data_dir: Path) -> Path:
    return data_dir / "trainers"


def new_run(data_dir: Path, trainer: str) -> RunDir:
    version = new_policy_version(trainer)
    root = trainers_dir(data_dir) / version
    root.mkdir(parents=True, exist_ok=False)
    return RunDir(root, version)


def existing_run(data_dir: Path, policy_version: str) -> RunDir:
    root = trainers_dir(data_dir) / policy_version
    if not root.is_dir():
        raise FileNotFoundError(f"no training run {policy_version} under {trainers_dir(data_dir)}")
    return RunDir(root, policy_version)


def _latest_file(data_dir: Path) -> Path:
    return trainers_dir(data_dir) / "latest.json"


def read_latest(data_dir: Path) -> dict[str, Any]:
    path = _latest_file(data_dir)
    return json.loads(path.read_text()) if path.is_file() else {}


def record_latest(
    data_dir: Path, trainer: str, run: RunDir, summary: dict[str, Any], *, arm: str | None = None
) -> None:
    """``run`` is now the latest of its trainer (and, with ``arm``, the latest policy of that recipe
    arm, under ``arms``: what the recurring evaluation measures)."""
    latest = read_latest(data_dir)
    latest[trainer] = {"policy_version": run.policy_version, "final": str(run.final), **summary}
    if arm is not None:
        latest.setdefault("arms", {})[arm] = {"policy_version": run.policy_version, "trainer": trainer}
    latest["last"] = run.policy_version
    path = _latest_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(latest, indent=2))
    os.replace(tmp, path)


def write_summary(run: RunDir, summary: dict[str, Any]) -> None:
    run.summary.write_text(json.dumps(summary, indent=2, default=str))


def load_pretrained(path: str | Path):  # -> (model, tokenizer)
    """A local model folder (``save_pretrained`` layout). Never downloads: the hub is off-limits."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"model folder not found: {path} (give a local folder; nothing is downloaded)"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def parent_version(path: Path) -> str | None:
    """The policy version of a model folder written by one of our runs (``<version>/final``)."""
    summary = path.parent / "run.json"
    if path.name == "final" and summary.is_file():
        return json.loads(summary.read_text()).get("policy_version")
    return None
