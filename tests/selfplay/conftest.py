"""Self-play fixtures: the sandbox tests' toy repository as a task, and a local sandbox."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.sandbox.toyrepo import ToyRepo, make_toy_repo
from tests.support import require_service
from vtforge.sandbox.api import Limits, Sandbox
from vtforge.selfplay.task import SelfplayTask, as_selfplay_task


@pytest.fixture(scope="session")
def toy(tmp_path_factory: pytest.TempPathFactory) -> ToyRepo:
    return make_toy_repo(tmp_path_factory.mktemp("selfplay-toy"))


@pytest.fixture(scope="session")
def toy_task(toy: ToyRepo) -> SelfplayTask:
    return as_selfplay_task(toy.instance())


@pytest.fixture(scope="session")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    from vtforge.sandbox.local import LocalSandbox

    sandbox = LocalSandbox(
        Limits(memory_mb=1024, timeout_s=120.0), work_dir=tmp_path_factory.mktemp("sp-work")
    )
    sandbox.concurrency = 2
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="session")
def real_llamacpp(real_model_gguf):  # -> LlamaCppEngine
    """SmolLM2-135M-Instruct on llama.cpp, loaded once per session (4,096 positions: a small KV cache)."""
    from vtforge import constants as C
    from vtforge.selfplay.engines.llamacpp_engine import LlamaCppEngine

    engine = LlamaCppEngine(real_model_gguf, n_ctx=4096, model_name=C.DEFAULT_MODEL)
    yield engine
    engine.close()
