"""The one resource every warehouse asset gets: the config, and the warehouse's single writer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb
from dagster import ConfigurableResource

from vtforge.config import Config, load_config
from warehouse.connection import writer
from warehouse.models import prepare

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
