"""The curated-freshness check (``curated_fresh``): it passes while the curated tables hold every
landed file or the oldest waiting one is younger than ``forge.warehouse.freshness_target_s``, and
warns once a landed file has waited longer — not ingested yet, or ingested by a run that rebuilt
no curated table."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.warehouse.conftest import config_here, emit
from tests.warehouse.streams import T1, Stream, hand_stream
from vtforge.config import Config
from vtforge.warehouse.checks import curated_lag
from vtforge.warehouse.connection import writer
from vtforge.warehouse.load import load_landing
from vtforge.warehouse.refresh import refresh

TARGET_S = 30.0  # not the default (60), so the check is seen to read the lever


@pytest.fixture
def config(workspace: Path) -> Config:
    (workspace / "vtcode.toml").write_text(
        '[agent]\nprovider = "openai"\n\n'
        f'[forge.warehouse]\ndata_dir = ".forge"\nfreshness_target_s = {TARGET_S}\n'
    )
    return config_here()


def land_more(config: Config, tag: str, age_s: float | None = None) -> list[Path]:
    """Land one new event in a new file, as if it had landed ``age_s`` ago; the new files."""
    before = set(config.landing_dir.rglob("*.parquet"))
    extra = Stream()
    extra.execution(f"E-{tag}", T1, None, None, [("t/x.py::t", "PASSED")])
    emit(config, extra.events)
    files = sorted(set(config.landing_dir.rglob("*.parquet")) - before)
    if age_s is not None:
        then = time.time() - age_s
        for path in files:
            os.utime(path, (then, then))
    return files


def lag(config: Config) -> tuple[bool, dict[str, Any]]:
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        outcome = curated_lag(con, config.landing_dir, config.forge.warehouse.freshness_target_s)
    return outcome.passed, outcome.metadata


def test_the_lag_is_the_age_of_the_oldest_landed_file_not_yet_curated(config: Config) -> None:
    assert config.forge.warehouse.freshness_target_s == TARGET_S
    emit(config, hand_stream())
    refresh(config, exports=False)
    passed, meta = lag(config)
    assert passed and meta["files_waiting"] == 0 and meta["lag_s"] == 0.0

    land_more(config, "young", age_s=TARGET_S / 2)  # waiting, but within the target
    passed, meta = lag(config)
    assert passed and meta["files_waiting"] == 1
    assert TARGET_S / 2 - 1 < meta["lag_s"] < TARGET_S

    land_more(config, "old", age_s=2 * TARGET_S)  # waiting for twice the target
    passed, meta = lag(config)
    assert not passed and meta["files_waiting"] == 2
    assert 2 * TARGET_S - 1 < meta["lag_s"] < 2 * TARGET_S + 30

    refresh(config, exports=False)  # ingested and curated: nothing waits any more
    passed, meta = lag(config)
    assert passed and meta["files_waiting"] == 0


def test_files_ingested_after_the_curated_build_still_wait(config: Config) -> None:
    emit(config, hand_stream())
    refresh(config, exports=False)
    land_more(config, "late", age_s=2 * TARGET_S)
    with writer(config.duckdb_path) as con:  # ingested, but no curated table rebuilt
        load_landing(con, config.landing_dir)
    passed, meta = lag(config)
    assert not passed and meta["files_waiting"] == 1
    refresh(config, exports=False)  # the curated tables catch up: fresh
    passed, meta = lag(config)
    assert passed and meta["files_waiting"] == 0


@pytest.fixture
def instance() -> Iterator[Any]:
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as inst:
        yield inst


def curated_fresh_outcome(config: Config, instance: Any, selection: Any) -> tuple[bool, str] | None:
    """Run ``selection`` of the warehouse graph in-process; ``curated_fresh``'s (passed, severity)."""
    from dagster import materialize

    from vtforge.pipelines.assets import ALL_ASSETS
    from vtforge.pipelines.checks import ALL_CHECKS
    from vtforge.pipelines.resources import WarehouseResource

    result = materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=selection,
        instance=instance,
        resources={"warehouse": WarehouseResource(config_path=str(config.files[-1]))},
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    assert result.success  # curated_fresh only warns: a stale warehouse never fails a run
    found = [e for e in result.get_asset_check_evaluations() if e.check_name == "curated_fresh"]
    return (found[0].passed, found[0].severity.value) if found else None


@pytest.mark.slow
def test_curated_fresh_warns_in_dagster_when_the_curated_tables_trail_the_landing_zone(
    config: Config, instance: Any
) -> None:
    from dagster import AssetSelection

    from vtforge.pipelines.assets import RAW_KEYS
    from vtforge.pipelines.checks import curated_fresh
    from vtforge.pipelines.jobs import WAREHOUSE_GROUPS

    everything = AssetSelection.groups(*WAREHOUSE_GROUPS)
    check_alone = AssetSelection.checks(curated_fresh)
    emit(config, hand_stream())
    assert curated_fresh_outcome(config, instance, everything) == (True, "WARN")

    land_more(config, "waiting", age_s=2 * TARGET_S)  # landed, and no run for a minute
    assert curated_fresh_outcome(config, instance, check_alone) == (False, "WARN")

    # a run that ingests it but rebuilds no curated table leaves them as far behind as before
    assert curated_fresh_outcome(config, instance, AssetSelection.assets(*RAW_KEYS)) is None
    assert curated_fresh_outcome(config, instance, check_alone) == (False, "WARN")

    assert curated_fresh_outcome(config, instance, everything) == (True, "WARN")
