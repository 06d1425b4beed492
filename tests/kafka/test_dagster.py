"""Kafka in Dagster: lag observations, the lag sensor, and the ingestion asset (same Ingestor)."""

from __future__ import annotations

import pytest

pytest.importorskip("dagster")

from dagster import DagsterInstance, SensorResult, build_sensor_context, materialize

from tests.kafka.conftest import KafkaWorkspace
from tests.kafka.helpers import landed_ids, produce, rollout
from vtforge.pipelines.kafka_assets import kafka_ingest, kafka_lag_sensor, kafka_topics, observe_topics

pytestmark = pytest.mark.kafka


def test_lag_sensor_observes_topics_and_triggers_ingest_asset(kafka_ws: KafkaWorkspace) -> None:
    cfg = kafka_ws.config()
    ids = produce(cfg, [rollout(i, tag=kafka_ws.tag) for i in range(300)])
    with DagsterInstance.ephemeral() as instance:
        result = kafka_lag_sensor(build_sensor_context(instance=instance))
        assert isinstance(result, SensorResult)
        assert len(result.run_requests) == 1
        observed = {o.asset_key.path[-1]: o.metadata for o in result.asset_events}
        assert observed["rollout"]["consumer_lag"].value == 300

        run = materialize([kafka_topics, kafka_ingest], instance=instance, selection=[kafka_ingest])
        assert run.success
        meta = run.asset_materializations_for_node("kafka__ingest")[0].metadata
        assert meta["events"].value == 300

        after = kafka_lag_sensor(build_sensor_context(instance=instance))
        assert isinstance(after, SensorResult) and not after.run_requests
    assert sorted(landed_ids(cfg)) == sorted(ids)
    rollout_obs = next(m for t, m, _ in observe_topics(cfg) if t == "rollout")
    assert rollout_obs["consumer_lag"] == 0 and rollout_obs["end_offset_total"] == 300
