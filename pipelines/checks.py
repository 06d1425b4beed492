"""Asset checks. Blocking where a downstream dataset would be wrong: duplicate or unknown-version
events (raw layer), orphan executions or rewards (curated layer), exports that differ from their
provenance manifests. Freshness only warns."""

from datetime import timedelta

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from vtforge.pipelines.resources import WRITER_POOL, WarehouseResource
from vtforge.warehouse import checks as wc
from vtforge.warehouse.export_manifest import check_manifest
from vtforge.warehouse.exports import GROUPS


def _result(outcome: wc.CheckOutcome, severity: AssetCheckSeverity) -> AssetCheckResult:
    return AssetCheckResult(
        passed=outcome.passed, severity=severity, description=outcome.description, metadata=outcome.metadata
    )


@asset_check(asset="events", blocking=True, pool=WRITER_POOL, description=wc.unique_event_ids.__doc__)
def unique_event_ids(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as (con, _):
        return _result(wc.unique_event_ids(con), AssetCheckSeverity.ERROR)


@asset_check(asset="events", blocking=True, pool=WRITER_POOL, description=wc.known_schema_versions.__doc__)
def known_schema_versions(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as (con, _):
        return _result(wc.known_schema_versions(con), AssetCheckSeverity.ERROR)


@asset_check(asset="events", blocking=False, pool=WRITER_POOL, description=wc.raw_events_fresh.__doc__)
def raw_events_fresh(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as (con, config):
        limit = timedelta(hours=config.forge.warehouse.freshness_max_age_hours)
        return _result(wc.raw_events_fresh(con, limit), AssetCheckSeverity.WARN)


@asset_check(
    asset="rollouts",
    additional_deps=[t for t in wc.CURATED_TABLES if t != "rollouts"],  # runs after every curated table
    blocking=False,
    pool=WRITER_POOL,
    description=wc.curated_lag.__doc__,
)
def curated_fresh(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as (con, config):
        outcome = wc.curated_lag(con, config.landing_dir, config.forge.warehouse.freshness_target_s)
    return _result(outcome, AssetCheckSeverity.WARN)


@asset_check(asset="executions", blocking=True, pool=WRITER_POOL, description=wc.no_orphan_executions.__doc__)
def no_orphan_executions(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as (con, _):
        return _result(wc.no_orphan_executions(con), AssetCheckSeverity.ERROR)


@asset_check(asset="rewards", blocking=True, pool=WRITER_POOL, description=wc.no_orphan_rewards.__doc__)
def no_orphan_rewards(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as (con, _):
        return _result(wc.no_orphan_rewards(con), AssetCheckSeverity.ERROR)


@asset_check(asset="dataset_exports", blocking=True, description=check_manifest.__doc__)
def exports_match_manifests(warehouse: WarehouseResource) -> AssetCheckResult:
    folder = warehouse.load().data_dir / "exports"
    problems = [p for group in GROUPS for p in check_manifest(folder, group)]
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems[:20]) or f"{', '.join(GROUPS)}: every file matches its manifest",
        metadata={"problems": len(problems)},
    )


ALL_CHECKS = [
    unique_event_ids,
    known_schema_versions,
    raw_events_fresh,
    curated_fresh,
    no_orphan_executions,
    no_orphan_rewards,
    exports_match_manifests,
]
