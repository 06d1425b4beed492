"""The Dagster code location: ``dagster dev -m vtforge.pipelines.definitions`` (``vtforge ui`` runs it).

Every step runs in one process (``in_process_executor``) and every writing step is in the
``vtforge_duckdb_writer`` pool, so a DuckDB file never has two writers; ``vtforge sql`` reads a
snapshot and never blocks them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

from dagster import Definitions, in_process_executor

from vtforge.config import load_config
from vtforge.pipelines.assets import ALL_ASSETS
from vtforge.pipelines.checks import ALL_CHECKS
from vtforge.pipelines.corpus import CORPUS_ASSETS, CORPUS_CHECKS
from vtforge.pipelines.evaluation import EVALUATION_ASSETS, evaluation_job, recurring_evaluation
from vtforge.pipelines.jobs import warehouse_job
from vtforge.pipelines.resources import WarehouseResource
from vtforge.pipelines.sensors import landing_sensor
from vtforge.pipelines.training import TRAINING_ASSETS, TRAINING_CHECKS, grpo_job

# The Kafka assets need the `kafka` extra (kafka-python). Without it the code location serves the
# landing-zone path alone (`forge.events.sink = "landing"`); with it, an error inside still fails loudly.
if importlib.util.find_spec("kafka") is not None:
    _kafka = importlib.import_module("vtforge.pipelines.kafka_assets")
    kafka_assets, kafka_sensors = list(_kafka.kafka_assets), list(_kafka.kafka_sensors)
else:
    kafka_assets, kafka_sensors = [], []


def build_definitions(config_path: str | None = None) -> Definitions:
    return Definitions(
        assets=[*ALL_ASSETS, *TRAINING_ASSETS, *EVALUATION_ASSETS, *CORPUS_ASSETS, *kafka_assets],
        asset_checks=[*ALL_CHECKS, *TRAINING_CHECKS, *CORPUS_CHECKS],
        jobs=[warehouse_job, grpo_job, evaluation_job],
        schedules=[recurring_evaluation(load_config(config_path))],
        sensors=[landing_sensor, *kafka_sensors],
        resources={"warehouse": WarehouseResource(config_path=config_path)},
        executor=in_process_executor,
    )


defs = build_definitions(os.environ.get("VTCODE_CONFIG_PATH"))
