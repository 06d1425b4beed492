"""Warehouse assets: raw ingest, one asset per SQL model, quarantine and the Parquet exports."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from vtforge.pipelines.resources import WRITER_POOL, WarehouseResource
from vtforge.schemas import default_catalog
from vtforge.warehouse.exports import export_datasets
from vtforge.warehouse.incremental import Builder
from vtforge.warehouse.load import load_landing, raw_table
from vtforge.warehouse.model_metadata import Markdown, model_metadata
from vtforge.warehouse.models import DATASETS, MODELS, RAW, Model
from vtforge.warehouse.quarantine_table import build_quarantine

EVENT_TYPES = default_catalog().event_types
FULL_REBUILD_TAG = "vtforge/full_rebuild"  # a run tagged "true" rebuilds every model from scratch
RAW_KEYS = ["events", *(raw_table(t) for t in EVENT_TYPES)]


@multi_asset(
    name="raw_ingest",
    specs=[
        AssetSpec("events", group_name=RAW, description="Every envelope, deduplicated on event_id."),
        *(
            AssetSpec(raw_table(t), group_name=RAW, description=f"Every {t} event, deduplicated on event_id.")
            for t in EVENT_TYPES
        ),
    ],
    pool=WRITER_POOL,
)
def raw_ingest(context: AssetExecutionContext, warehouse: WarehouseResource):
    """Landing Parquet files not read before → ``events`` and ``raw_<event_type>`` (incremental)."""
    with warehouse.connect() as (con, config):
        every = config.forge.warehouse.compact_every
        stats = {s.event_type: s for s in load_landing(con, config.landing_dir, compact_every=every)}
        total = con.execute("SELECT count(*) FROM events").fetchone()[0]
        counts = {t: con.execute(f'SELECT count(*) FROM "{raw_table(t)}"').fetchone()[0] for t in EVENT_TYPES}
    new = sum(s.rows_new for s in stats.values())
    context.log.info(f"ingested {new} new events from {sum(s.files for s in stats.values())} files")
    yield MaterializeResult(
        asset_key="events",
        metadata={
            "dagster/row_count": total,
            "new_rows": new,
            "new_files": sum(s.files for s in stats.values()),
            "duplicates_dropped": sum(s.duplicates for s in stats.values()),
        },
    )
    for event_type in EVENT_TYPES:
        s = stats[event_type]
        yield MaterializeResult(
            asset_key=raw_table(event_type),
            metadata={"dagster/row_count": counts[event_type], "new_rows": s.rows_new, "new_files": s.files},
        )


@asset(group_name=RAW, pool=WRITER_POOL, description="Every rejected record, with its reason and location.")
def quarantine(warehouse: WarehouseResource) -> MaterializeResult:
    with warehouse.connect() as (con, config):
        rows = build_quarantine(con, config.quarantine_dir)
    return MaterializeResult(metadata={"dagster/row_count": rows})


def _gated(deps: tuple[str, ...]) -> list[str]:
    """A model that reads raw tables also waits on ``events``, whose blocking checks gate the raw layer."""
    return (
        [*deps, "events"] if any(d.startswith("raw_") for d in deps) and "events" not in deps else list(deps)
    )


def model_asset(model: Model) -> AssetsDefinition:
    """An asset that brings one SQL model up to date (its SQL is shown in the UI): only the tasks new
    events touched, unless the run is tagged ``vtforge/full_rebuild=true``."""

    @asset(
        name=model.name,
        group_name=model.group,
        deps=[AssetKey(d) for d in _gated(model.deps)],
        description=model.description,
        pool=WRITER_POOL,
        kinds={"duckdb", "sql"},
        metadata={"sql": model.sql},
    )
    def _build(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        full = context.run.tags.get(FULL_REBUILD_TAG, "").lower() == "true"
        with warehouse.connect() as (con, config):
            with Builder(con, compact_every=config.forge.warehouse.compact_every) as builder:
                built = builder.materialize(model.name, full=full)
            extra = model_metadata(con, model.name)  # rl_prompts: the tasks it left out, and why
        shown = {k: MetadataValue.md(v) if isinstance(v, Markdown) else v for k, v in extra.items()}
        counted = {} if built.rows is None else {"dagster/row_count": built.rows}  # a view: not counted
        return MaterializeResult(
            metadata={
                **counted,
                "build": built.mode,
                "slices_rebuilt": built.affected_slices,
                **shown,
            }
        )

    return _build


@asset(
    group_name=DATASETS,
    deps=["sft_examples", "rl_prompts"],
    pool=WRITER_POOL,
    description="Parquet files in the layouts TRL and verl read, under <data>/exports.",
)
def dataset_exports(warehouse: WarehouseResource) -> MaterializeResult:
    with warehouse.connect() as (con, config):
        folder = config.data_dir / "exports"
        written = export_datasets(con, folder, vtcode=config.forge.datasets.sft_vtcode)
    return MaterializeResult(metadata={"folder": str(folder), **{k: v for k, v in written.items()}})


MODEL_ASSETS = [model_asset(m) for m in MODELS]
ALL_ASSETS = [raw_ingest, quarantine, *MODEL_ASSETS, dataset_exports]
