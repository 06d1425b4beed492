"""Jobs: the whole warehouse graph (raw → curated → datasets/telemetry), checks included.

The warehouse job runs every check of its assets except ``grpo_start_promoted``: whether GRPO may
start says nothing about the warehouse's data, and it blocks only ``grpo_job`` (pipelines/training.py).
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from vtforge.pipelines.training import grpo_start_promoted
from vtforge.warehouse.models import CURATED, DATASETS, RAW, TELEMETRY

WAREHOUSE_GROUPS = (RAW, CURATED, DATASETS, TELEMETRY)

warehouse_job = define_asset_job(
    "warehouse_job",
    selection=AssetSelection.groups(*WAREHOUSE_GROUPS) - AssetSelection.checks(grpo_start_promoted),
    description="Ingest new landing files and rebuild every table, dataset and telemetry table.",
    tags={"vtforge/writer": "duckdb"},
)
