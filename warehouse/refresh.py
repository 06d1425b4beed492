"""Refresh the whole warehouse without Dagster (benchmarks, debugging, the trainers' tests).

The Dagster assets call exactly the same functions, one per asset; this is the same sequence in
one writer session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtforge.warehouse.connection import writer
from vtforge.warehouse.exports import export_datasets
from vtforge.warehouse.load import load_landing
from vtforge.warehouse.models import build, build_order, prepare
from vtforge.warehouse.quarantine_table import build_quarantine

if TYPE_CHECKING:
    from vtforge.config import Config


def refresh(config: Config, *, exports: bool = True) -> dict[str, int]:
    """Ingest new landing files, rebuild every model (and the exports); rows per table."""
    rows: dict[str, int] = {}
    with writer(config.duckdb_path, storage_version=config.forge.warehouse.storage_version) as con:
        prepare(con, config)
        for stats in load_landing(con, config.landing_dir):
            rows[f"raw_{stats.event_type}"] = stats.rows_new
        rows["quarantine"] = build_quarantine(con, config.quarantine_dir)
        for model in build_order():
            rows[model.name] = build(con, model.name)
        if exports:
            for name, count in export_datasets(con, config.data_dir / "exports").items():
                rows[f"exports/{name}"] = count
    return rows
