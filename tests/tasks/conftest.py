"""Task-bank fixtures: a config in a temp workspace, the local sandbox, the toy package."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require_service
from tests.tasks.toypkg import make_sdist
from vtforge.config import Config, load_config
from vtforge.sandbox.api import Limits, Sandbox

TEST_LIMITS = Limits(cpus=1.0, memory_mb=1024, pids=128, timeout_s=120.0, file_size_mb=64)


@pytest.fixture
def cfg(workspace: Path) -> Config:
    return load_config()


@pytest.fixture(scope="session")
def task_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    from vtforge.sandbox.local import LocalSandbox

    box = LocalSandbox(TEST_LIMITS, work_dir=tmp_path_factory.mktemp("tasks-sandbox"))
    box.concurrency = 2
    yield box
    box.close()


@pytest.fixture(scope="session")
def toy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("sdists")
    make_sdist(cache)
    return cache
