"""KafkaSink: idempotent producer, key = task id, one topic per event type, failures reach the caller."""

from __future__ import annotations

import os
import threading
from collections import defaultdict

import pytest

from tests.kafka.conftest import KafkaWorkspace
from tests.kafka.helpers import landed, landed_ids, produce, rollout
from vtforge.ingest import Ingestor
from vtforge.kafka import client
from vtforge.transport import SinkError, sink_from_config
from vtforge.transport.kafka import KafkaSink

pytestmark = pytest.mark.kafka


def test_two_producers_then_ingest_is_exact(kafka_ws: KafkaWorkspace) -> None:
    cfg = kafka_ws.config()
    per_producer = 1500
    acked: list[list[str]] = [[], []]

    def producer(n: int) -> None:
        events = [rollout(i, tag=f"p{n}") for i in range(per_producer)]
        acked[n] = produce(cfg, events)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = set(acked[0]) | set(acked[1])
    assert len(expected) == 2 * per_producer

    report = Ingestor(cfg, once=True).run()
    ids = landed_ids(cfg)
    assert report.events == 2 * per_producer
    assert len(ids) == 2 * per_producer  # exact count
    assert len(set(ids)) == len(ids)  # zero duplicates
    assert set(ids) == expected  # every event id present

    again = Ingestor(cfg, once=True).run()  # nothing new: nothing rewritten
    assert again.events == 0
    assert sorted(landed_ids(cfg)) == sorted(ids)


def test_one_topic_per_event_type_with_configured_partitions(make_kafka_workspace) -> None:
    ws = make_kafka_workspace(forge__events__kafka={"partitions": 2})
    cfg = ws.config()
    produce(cfg, [rollout(0, tag=ws.tag)])
    admin = client.Admin(client.Connection.from_config(cfg))
    try:
        topic = cfg.forge.events.topic("rollout")
        assert topic == f"{ws.tag}.rollout"
        assert [p.partition for p in admin.partitions([topic])] == [0, 1]
        assert (
            admin.end_offsets(admin.partitions([topic]))
            and sum(admin.end_offsets(admin.partitions([topic])).values()) == 1
        )
    finally:
        admin.close()


def test_task_id_is_the_key_so_a_task_stays_on_one_partition_in_order(kafka_ws: KafkaWorkspace) -> None:
    cfg = kafka_ws.config()
    produce(cfg, [rollout(i, tag=kafka_ws.tag, tasks=7) for i in range(700)])
    Ingestor(cfg, once=True).run()
    rows = landed(cfg)
    assert len(rows) == 700
    partitions: dict[str, set[str]] = defaultdict(set)
    order: dict[str, list[int]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["file"]):  # files sort by partition, then offset
        partitions[row["task_id"]].add(row["file"].split(".o")[0])
        order[row["task_id"]].append(row["sample_index"])
    assert len(partitions) == 7
    assert all(len(parts) == 1 for parts in partitions.values())
    assert all(seq == sorted(seq) for seq in order.values())


def test_rejected_event_surfaces_on_flush(make_kafka_workspace) -> None:
    # The broker refuses records over message.max.bytes (1 MB): the failure must reach the caller.
    ws = make_kafka_workspace(forge__events__kafka={"compression": "none", "delivery_timeout_ms": 10000})
    cfg = ws.config()
    big = rollout(1, tag=ws.tag)
    big["messages"] = [
        {"role": "user", "content": os.urandom(1_200_000).hex(), "name": None, "tool_call_id": None}
    ]
    sink = sink_from_config(cfg)
    assert isinstance(sink, KafkaSink)
    sink.emit(rollout(0, tag=ws.tag))
    assert sink.flush() == 1
    sink.emit(big)  # alone in its request: records batched with it would be refused with it
    with pytest.raises(SinkError, match=r"1 of 1 events were not acknowledged.*MessageSizeTooLarge"):
        sink.flush()
    sink.emit(rollout(2, tag=ws.tag))
    assert sink.flush() == 1  # the sink stays usable after reporting
    sink.close()


def test_no_broker_is_an_error_not_a_silent_drop(make_kafka_workspace) -> None:
    ws = make_kafka_workspace(
        forge__events={"bootstrap_servers": "127.0.0.1:1"}, forge__events__kafka={"max_block_ms": 1000}
    )
    cfg = ws.config()
    with pytest.raises(SinkError, match=r"127\.0\.0\.1:1"), sink_from_config(cfg) as sink:
        sink.emit(rollout(0))
