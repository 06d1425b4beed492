"""Jobs: the whole warehouse graph (raw → curated → datasets/telemetry), checks included."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from warehouse.models import CURATED, DATASETS, RAW, TELEMETRY

WAREHOUSE_GROUPS = (RAW, CURATED, DATASETS, TELEMETRY)

warehouse_job = define_asset_job(
    "warehouse_job",
    selection=AssetSelection.groups(*WAREHOUSE_GROUPS),
    description="Ingest new landing files and rebuild every table, dataset and telemetry table.",
    tags={"vtforge/writer": "duckdb"},
)
