"""Kafka in Dagster: the event topics as observed external assets, and ingestion as an asset.

* ``kafka_topics`` — one external asset per event type (``kafka/<event_type>``), observed with the
  topic's end offsets, the ingest group's committed offsets and the lag between them.
* ``kafka_ingest`` — drains the topics into the landing zone with the very same ``Ingestor``
  that ``vtforge ingest --once`` runs, so a small deployment needs only Dagster. The landing
  sensor (pipelines/sensors.py) then loads the new files into the warehouse.
* ``kafka_lag_sensor`` — reports the lag as asset observations and asks for a ``kafka_ingest``
  run when there is lag (one run per distinct set of end offsets).

Dagster has no Kafka consumer of its own; polling in bounded batches from a sensor-triggered
asset is the pattern its maintainers recommend, and keeps offsets in Kafka's consumer group.
"""

import hashlib
from collections import defaultdict

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetSpec,
    DataVersion,
    DefaultSensorStatus,
    MaterializeResult,
    ObserveResult,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    multi_observable_source_asset,
    sensor,
)

from vtforge.config import Config, load_config
from vtforge.ingest import Ingestor
from vtforge.ingest.status import PartitionLag, topic_lags
from vtforge.schemas.catalog import default_catalog

GROUP = "kafka"
LAG_SENSOR_INTERVAL_S = 30
EVENT_TYPES = default_catalog().event_types


def topic_key(event_type: str) -> AssetKey:
    return AssetKey(["kafka", event_type])


def _per_topic(config: Config) -> dict[str, list[PartitionLag]]:
    by_topic: dict[str, list[PartitionLag]] = defaultdict(list)
    for lag in topic_lags(config):
        by_topic[lag.topic].append(lag)
    return by_topic


def _observation_metadata(topic: str, lags: list[PartitionLag]) -> dict[str, str | int]:
    return {
        "topic": topic,
        "partitions": len(lags),
        "end_offset_total": sum(x.end for x in lags),
        "committed_total": sum(x.committed or 0 for x in lags),
        "consumer_lag": sum(x.lag for x in lags),
        "max_partition_lag": max((x.lag for x in lags), default=0),
    }


def observe_topics(config: Config) -> list[tuple[str, dict[str, str | int], str]]:
    """(event_type, metadata, data version) for every event topic that exists."""
    by_topic = _per_topic(config)
    out = []
    for event_type in EVENT_TYPES:
        topic = config.forge.events.topic(event_type)
        lags = by_topic.get(topic)
        if lags is None:
            continue
        version = ",".join(str(x.end) for x in sorted(lags, key=lambda x: x.partition))
        out.append((event_type, _observation_metadata(topic, lags), version))
    return out


@multi_observable_source_asset(
    specs=[
        AssetSpec(
            topic_key(event_type),
            group_name=GROUP,
            description=f"The Kafka topic of {event_type} events (forge.events.topic_prefix + type).",
        )
        for event_type in EVENT_TYPES
    ],
    description="End offsets and consumer lag of the event topics.",
)
def kafka_topics():
    for event_type, metadata, version in observe_topics(load_config()):
        yield ObserveResult(
            asset_key=topic_key(event_type), metadata=metadata, data_version=DataVersion(version)
        )


@asset(
    key=AssetKey(["kafka", "ingest"]),
    group_name=GROUP,
    deps=[topic_key(t) for t in EVENT_TYPES],
    description="Drain the event topics into landing Parquet (same code as `vtforge ingest --once`).",
)
def kafka_ingest(context: AssetExecutionContext) -> MaterializeResult:
    config = load_config()
    report = Ingestor(config, once=True, member=f"dagster-{context.run.run_id[:8]}").run()
    context.log.info(
        f"ingested {report.events} events, quarantined {report.rejected}, {report.files} files, "
        f"{report.commits} commits in {report.seconds:.1f}s"
    )
    return MaterializeResult(
        metadata={
            "events": report.events,
            "quarantined": report.rejected,
            "files": report.files,
            "commits": report.commits,
            "partitions": len(report.partitions),
            "seconds": round(report.seconds, 2),
            "landing_dir": str(config.landing_dir),
        }
    )


def lag_decision(config: Config) -> tuple[list[AssetObservation], int, str]:
    """Observations of every topic, the total lag, and a run key for the current end offsets."""
    observations = []
    total = 0
    digest = hashlib.sha1()
    for event_type, metadata, version in observe_topics(config):
        observations.append(AssetObservation(asset_key=topic_key(event_type), metadata=metadata))
        total += int(metadata["consumer_lag"])
        digest.update(f"{event_type}={version};".encode())
    return observations, total, digest.hexdigest()[:16]


@sensor(
    target=kafka_ingest,
    minimum_interval_seconds=LAG_SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Observes consumer lag on the event topics; starts kafka/ingest when there is lag.",
)
def kafka_lag_sensor(context: SensorEvaluationContext):
    config = load_config()
    if config.forge.events.sink != "kafka":
        return SkipReason("forge.events.sink is not kafka")
    try:
        observations, total_lag, run_key = lag_decision(config)
    except Exception as exc:  # broker down: say so, try again next tick
        return SkipReason(f"cannot read lag from {config.forge.events.bootstrap_servers}: {exc}")
    if total_lag == 0:
        return SensorResult(asset_events=observations, skip_reason="no consumer lag")
    return SensorResult(
        run_requests=[RunRequest(run_key=run_key, tags={"vtforge/trigger": "kafka-lag"})],
        asset_events=observations,
        cursor=run_key,
    )


kafka_assets = [kafka_topics, kafka_ingest]
kafka_sensors = [kafka_lag_sensor]
