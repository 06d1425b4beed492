"""Clients that are not vtforge's, against the real broker: a librdkafka producer (what Rust and Go
producers wrap) feeds the ingestor, and Kafka's own Java tools read the topics and the group."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import duckdb
import fastavro
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro.schema import fingerprint, to_parsing_canonical_form

from tests.cli import invoke
from tests.kafka.conftest import KafkaWorkspace
from tests.kafka.helpers import produce, quarantined, rollout
from vtforge.ingest import Ingestor
from vtforge.ingest.status import topic_lags
from vtforge.kafka.tools import console_keys, describe_group
from vtforge.schemas import default_catalog
from vtforge.schemas.catalog import export_resolved
from vtforge.transport.landing import landing_files
from vtforge.warehouse.refresh import refresh

pytestmark = pytest.mark.kafka


def _foreign_encoder(folder: Path, event_type: str) -> Any:
    """What a producer in another language does with docs/KAFKA.md's recipe: take the exported,
    self-contained schema file, fingerprint its canonical form (CRC-64-AVRO, little-endian) and
    frame each Avro body as a single object (``C3 01`` + fingerprint + body)."""
    current = default_catalog().current(event_type)
    [path] = [p for p in export_resolved(default_catalog(), folder) if p.name == f"{current.name}.avsc"]
    schema = fastavro.parse_schema(json.loads(path.read_text()))
    header = b"\xc3\x01" + bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))

    listed = invoke("schemas", "list", env={"COLUMNS": "200"})  # what docs/KAFKA.md points them to
    assert listed.exit_code == 0 and header.hex(" ") in listed.stdout, listed.stdout

    def encode(event: dict[str, Any]) -> bytes:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, schema, event)
        return header + body.getvalue()

    return encode


def _landed_rows(cfg) -> dict[str, list[dict[str, Any]]]:
    """Every landed rollout row (all columns), by event id."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in landing_files(cfg.landing_dir, ["rollout"]):
        for row in pq.read_table(path).to_pylist():
            rows.setdefault(row["envelope"]["event_id"], []).append(row)
    return rows


def test_a_librdkafka_producer_is_ingested_like_our_own(kafka_ws: KafkaWorkspace, tmp_path: Path) -> None:
    cfg = kafka_ws.config()
    topic = cfg.forge.events.topic("rollout")
    events = [rollout(i, tag=kafka_ws.tag) for i in range(40)]

    admin = AdminClient({"bootstrap.servers": kafka_ws.broker.bootstrap})
    created = admin.create_topics([NewTopic(topic, num_partitions=cfg.forge.events.kafka.partitions)])
    created[topic].result(timeout=30)

    encode = _foreign_encoder(tmp_path / "avsc", "rollout")
    producer = Producer(
        {
            "bootstrap.servers": kafka_ws.broker.bootstrap,
            "client.id": "librdkafka-producer",
            "enable.idempotence": True,  # explicit: acks=all, ordered retries without duplicates
            "acks": "all",
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 5,
        }
    )
    acked: list[str] = []
    failed: list[str] = []

    def report(error: Any, message: Any) -> None:
        (failed if error is not None else acked).append(message.key().decode())

    for event in events:
        envelope = event["envelope"]
        producer.produce(topic, encode(event), key=envelope["task_id"].encode(), on_delivery=report)
    assert producer.flush(30) == 0
    assert failed == [] and len(acked) == len(events)

    produce(cfg, events)  # the same events again through vtforge's own producer: re-deliveries

    ran = Ingestor(cfg, once=True).run()
    assert (ran.events, ran.rejected) == (2 * len(events), 0) and quarantined(cfg) == []

    rows = _landed_rows(cfg)
    assert sorted(rows) == sorted(e["envelope"]["event_id"] for e in events)
    for event_id, copies in rows.items():
        assert len(copies) == 2, event_id  # one from each producer, landed identically
        assert copies[0] == copies[1], event_id

    refresh(cfg, exports=False)
    con = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM rollouts").fetchone()[0] == len(events)
        same, different = con.execute(
            "SELECT count(*) FILTER (WHERE payload_hash = kept_payload_hash), "
            "count(*) FILTER (WHERE payload_hash <> kept_payload_hash) FROM _duplicate_events"
        ).fetchone()
    finally:
        con.close()
    assert (same, different) == (len(events), 0)  # the second copies are harmless re-deliveries


def test_kafkas_own_tools_read_the_topics_and_report_the_ingestors_group(kafka_ws: KafkaWorkspace) -> None:
    cfg = kafka_ws.config()
    topic = cfg.forge.events.topic("rollout")
    version = cfg.forge.events.kafka.broker_version
    group = cfg.forge.events.kafka.consumer_group
    first = [rollout(i, tag=kafka_ws.tag) for i in range(30)]
    later = [rollout(i, tag=kafka_ws.tag) for i in range(30, 42)]
    produce(cfg, first)
    Ingestor(cfg, once=True).run()
    produce(cfg, later)  # not ingested yet: the group lags by these

    ours = {(lag.topic, lag.partition): lag for lag in topic_lags(cfg, [topic])}
    java = describe_group(version, kafka_ws.broker.bootstrap, group)
    assert java and {r.group for r in java} == {group}
    for row in java:
        lag = ours[(row.topic, row.partition)]
        assert (row.committed, row.end, row.lag) == (lag.committed, lag.end, lag.lag)
    assert {(r.topic, r.partition) for r in java} == {key for key, lag in ours.items() if lag.end}
    assert sum(r.lag or 0 for r in java) == len(later)

    status = invoke("ingest", "status", "--no-emit")
    assert status.exit_code == 0, status.stdout
    assert f"total lag {len(later)};" in status.stdout

    keys = console_keys(version, kafka_ws.broker.bootstrap, topic, messages=len(first) + len(later))
    assert sorted(keys) == sorted(e["envelope"]["task_id"] for e in first + later)
