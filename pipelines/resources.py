"""The one resource every warehouse asset gets: the config, and the warehouse's single writer."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import duckdb
from dagster import ConfigurableResource

from vtforge.config import Config, load_config
from vtforge.warehouse.connection import writer
from vtforge.warehouse.models import prepare

WRITER_POOL = "vtforge_duckdb_writer"  # Dagster pool: one writing step at a time (see pipelines/instance.py)


class WarehouseResource(ConfigurableResource):
    """Opens the DuckDB warehouse for writing, with the config's levers set on the connection.

    ``config_path`` None means the usual lookup (``VTCODE_CONFIG_PATH``, then the workspace's
    ``vtcode.toml`` from the current directory).
    """

    config_path: str | None = None
    lock_timeout_s: float = 600.0

    def load(self) -> Config:
        return load_config(self.config_path)

    @contextlib.contextmanager
    def connect(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, Config]]:
        config = self.load()
        with writer(
            config.duckdb_path,
            timeout_s=self.lock_timeout_s,
            storage_version=config.forge.warehouse.storage_version,
        ) as con:
            prepare(con, config)
            yield con, config

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m vtforge ARGS --config …`` in a child process, in the workspace: how an asset runs
        a stage that sits above the pipelines (training, evaluation) without importing it. Raises
        ``RuntimeError`` with the end of stderr when it fails."""
        config = self.load()
        command = [sys.executable, "-m", "vtforge", *args]
        if config.files:
            command += ["--config", str(config.files[-1])]
        done = subprocess.run(command, cwd=config.root, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"vtforge {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            )
        return done
