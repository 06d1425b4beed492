"""Warehouse fixtures: a workspace holding a landing zone, materialised once per module."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import enter_workspace
from vtforge.config import Config, load_config
from vtforge.transport import sink_from_config

WORKSPACE_TOML = """[agent]
provider = "openai"

[forge.warehouse]
data_dir = ".forge"

[forge.datasets]
synthetic_upsample = 3
"""


def make_workspace(root: Path, extra_toml: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "vtcode.toml").write_text(WORKSPACE_TOML + extra_toml)
    return root


def emit(config: Config, events: Iterable[dict[str, Any]]) -> int:
    with sink_from_config(config, producer="tests.warehouse") as sink:
        return sink.emit_many(events)


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace that is the cwd for a whole module (VTFORGE_* variables cleared)."""
    root = make_workspace(tmp_path_factory.mktemp("wh"))
    with pytest.MonkeyPatch.context() as mp:
        enter_workspace(mp, root)
        yield root


def materialize_in_process(config: Config, selection: list[str] | None = None):
    """Run the warehouse job in-process on an ephemeral Dagster instance; returns the result."""
    from dagster import DagsterInstance

    from vtforge.pipelines.definitions import build_definitions

    defs = build_definitions(str(config.files[-1]))
    job = defs.resolve_job_def("warehouse_job")
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False, run_config=quiet)


def config_here() -> Config:
    return load_config()
