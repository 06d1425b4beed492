"""The Stage 1 corpus in Dagster: one partition per source, and a check that the shards on disk
still match their manifest.

``corpus`` builds ``<data_dir>/corpus/<partition>/`` with ``vtforge.corpus.build`` (the same code as
``vtforge corpus build --sources <partition>``); ``corpus_shards_match_manifest`` re-hashes every
built partition's shards and compares rows, tokens and hashes with its ``manifest.json``, so a
shard changed or lost after the build fails the check.
"""

from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MaterializeResult,
    StaticPartitionsDefinition,
    asset,
    asset_check,
)

from vtforge.config import Config
from vtforge.corpus.build import BuildOptions, build_corpus
from vtforge.corpus.manifest import MANIFEST, check_shards
from vtforge.pipelines.resources import WarehouseResource

CORPUS_PARTITIONS = StaticPartitionsDefinition(["bank", "warehouse", "demo"])


def corpus_dir(config: Config) -> Path:
    return Path(config.data_dir) / "corpus"


@asset(
    group_name="corpus",
    partitions_def=CORPUS_PARTITIONS,
    kinds={"python", "parquet"},
    description="Stage 1 mid-training shards of one source (`vtforge corpus build`), with a manifest.",
)
def corpus(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    config = warehouse.load()
    source = context.partition_key
    manifest = build_corpus(
        config,
        BuildOptions(sources=[source], out=corpus_dir(config) / source, name=source, log=context.log.info),
    )
    return MaterializeResult(
        metadata={
            "content_sha256": manifest["content_sha256"],
            "shards": manifest["totals"]["shards"],
            "tokens": manifest["totals"]["tokens"],
            "removed": str(manifest["removed_by_reason"]),
        }
    )


@asset_check(asset=corpus, blocking=True, description=check_shards.__doc__)
def corpus_shards_match_manifest(warehouse: WarehouseResource) -> AssetCheckResult:
    root = corpus_dir(warehouse.load())
    built = sorted(p.parent for p in root.glob(f"*/{MANIFEST}"))
    problems: list[str] = []
    for folder in built:
        problems += [f"{folder.name}: {p}" for p in check_shards(folder).problems]
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems[:20]) or f"{len(built)} built partition(s) match their manifests",
        metadata={"partitions": len(built), "problems": len(problems)},
    )


CORPUS_ASSETS = [corpus]
CORPUS_CHECKS = [corpus_shards_match_manifest]
