"""The Dagster code location: ``dagster dev -m pipelines.definitions`` (``vtforge ui`` runs it).

Every step runs in one process (``in_process_executor``) and every writing step is in the
``vtforge_duckdb_writer`` pool, so a DuckDB file never has two writers; ``vtforge sql`` reads a
snapshot and never blocks them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

from dagster import Definitions, in_process_executor

from pipelines.assets import ALL_ASSETS
from pipelines.checks import ALL_CHECKS
from pipelines.evaluation import EVALUATION_ASSETS, evaluation_job, recurring_evaluation
from pipelines.jobs import warehouse_job
from pipelines.resources import WarehouseResource
from pipelines.sensors import landing_sensor
from pipelines.training import TRAINING_ASSETS, TRAINING_CHECKS, grpo_job
from vtforge.config import load_config

# pipelines/kafka_assets.py exports `kafka_assets` and `kafka_sensors`.
# It is skipped only while the file does not exist; an error inside it still fails loudly.
if importlib.util.find_spec("pipelines.kafka_assets") is not None:
    _kafka = importlib.import_module("pipelines.kafka_assets")
    kafka_assets, kafka_sensors = list(_kafka.kafka_assets), list(_kafka.kafka_sensors)
else:
    kafka_assets, kafka_sensors = [], []


def build_definitions(config_path: str | None = None) -> Definitions:
    return Definitions(
        assets=[*ALL_ASSETS, *TRAINING_ASSETS, *EVALUATION_ASSETS, *kafka_assets],
        asset_checks=[*ALL_CHECKS, *TRAINING_CHECKS],
        jobs=[warehouse_job, grpo_job, evaluation_job],
        schedules=[recurring_evaluation(load_config(config_path))],
        sensors=[landing_sensor, *kafka_sensors],
        resources={"warehouse": WarehouseResource(config_path=config_path)},
        executor=in_process_executor,
    )


defs = build_definitions(os.environ.get("VTCODE_CONFIG_PATH"))
