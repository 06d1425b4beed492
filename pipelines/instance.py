"""The Dagster instance under ``<data_dir>/dagster`` (DAGSTER_HOME for ``vtforge ui``/``materialize``).

``dagster.yaml`` turns telemetry off, queues runs, and enforces pools per *run*: a queued run that
writes the warehouse waits until no other such run holds the ``vtforge_duckdb_writer`` pool,
whose limit is set to 1 here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vtforge.pipelines.resources import WRITER_POOL

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from vtforge.config import Config

DAGSTER_YAML = f"""\
# written by vtforge (pipelines/instance.py); edits are kept
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  pools:
    granularity: run
  runs:
    max_concurrent_runs: 4
code_servers:
  local_startup_timeout: 300
# pool {WRITER_POOL} is limited to 1 in the instance database
"""


def dagster_home(config: Config) -> Path:
    return config.data_dir / "dagster"


def ensure_dagster_home(config: Config) -> Path:
    """Create DAGSTER_HOME with our dagster.yaml (kept if it exists) and return it."""
    home = dagster_home(config)
    home.mkdir(parents=True, exist_ok=True)
    yaml = home / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text(DAGSTER_YAML, encoding="utf-8")
    return home


def open_instance(config: Config) -> DagsterInstance:
    """The persistent instance, with the writer pool limited to one slot."""
    from dagster import DagsterInstance

    home = ensure_dagster_home(config)
    instance = DagsterInstance.from_config(str(home))
    storage = instance.event_log_storage
    if storage.get_concurrency_info(WRITER_POOL).slot_count != 1:
        storage.set_concurrency_slots(WRITER_POOL, 1)
    return instance
