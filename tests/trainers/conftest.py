"""Fixtures of the trainers' tests: a workspace with small training levers and a filled warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

os.environ["HF_HUB_OFFLINE"] = "1"  # no hub, ever
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"

SMALL_LEVERS = """
[forge.warehouse]
data_dir = ".forge"

[forge.context]
train_tokens = 512

[forge.train]
sft_batch_size = 4
save_steps = 2
num_generations = 4
grpo_prompts_per_step = 2
max_completion_tokens = 8

[forge.curriculum]
hard_return_stable_steps = 2
hard_return_min_success = 0.2
stability_tolerance = 0.5
replay_mix_fraction = 0.0
"""


def write_levers(workspace: Path, extra: str = "") -> None:
    (workspace / "vtcode.toml").write_text(SMALL_LEVERS + extra)


@pytest.fixture
def train_ws(workspace: Path) -> Path:
    """A workspace whose vtcode.toml has small training levers (no warehouse yet)."""
    write_levers(workspace)
    return workspace


@pytest.fixture
def cfg(train_ws: Path):
    from vtforge.config import load_config

    return load_config(cwd=train_ws)
