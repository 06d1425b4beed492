"""The ingestor against the real broker: poison input, crashes, broker restarts, group sharing."""

from __future__ import annotations

import random
import signal
import struct
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.kafka.conftest import KafkaWorkspace
from tests.kafka.helpers import (
    ingest_process,
    landed_ids,
    produce,
    quarantined,
    rollout,
    wait_until,
)
from vtforge.cli import app
from vtforge.ingest import Ingestor
from vtforge.ingest.stats import read_members
from vtforge.ingest.status import topic_lags
from vtforge.kafka import client
from vtforge.schemas import Codec
from vtforge.transport import SinkError, sink_from_config
from vtforge.transport.landing import landing_files

pytestmark = pytest.mark.kafka


def _raw_producer(cfg) -> client.Producer:
    return client.Producer(client.Connection.from_config(cfg), linger_ms=1)


def _read_topic(cfg, topic: str, expected: int, timeout_s: float = 30) -> list:
    """Up to ``expected`` records of ``topic``, read by a fresh group from the start."""
    consumer = client.Consumer(client.Connection.from_config(cfg), group=f"{topic}-reader")
    consumer.subscribe([topic], on_assigned=lambda _: None, on_revoked=lambda _: None)
    seen: list = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < expected and time.monotonic() < deadline:
        for records in consumer.poll(0.5).values():
            seen.extend(records)
    consumer.close()
    return seen


def _dead_letters(cfg, expected: int) -> list:
    return _read_topic(cfg, cfg.forge.events.dead_letter_topic, expected)


@pytest.mark.parametrize("workers", [0, 1], ids=["writer-thread", "worker-process"])
def test_poison_messages_are_quarantined_and_dead_lettered(kafka_ws: KafkaWorkspace, workers: int) -> None:
    cfg = kafka_ws.config()
    topic = cfg.forge.events.topic("rollout")
    codec = Codec()
    good = [rollout(i, tag=kafka_ws.tag) for i in range(60)]
    valid = codec.encode(good[0])
    poison = {
        "bad_magic": b"this is not avro at all",
        "unknown_schema": b"\xc3\x01" + struct.pack("<Q", 0xDEADBEEF) + valid[10:],
        "truncated": codec.encode(good[1])[: len(valid) // 2],
    }
    produce(cfg, good[:1])  # creates the topic through the sink
    producer = _raw_producer(cfg)
    expected_bad = []
    for i, event in enumerate(good[1:], start=1):
        producer.send(topic, codec.encode(event), key=b"k")
        if i % 10 == 0:
            reason = list(poison)[(i // 10) % 3]
            producer.send(topic, poison[reason], key=b"k")
            expected_bad.append(reason)
    producer.flush()
    producer.close()

    report = Ingestor(cfg, once=True, workers=workers).run()
    ids = landed_ids(cfg)
    assert sorted(ids) == sorted(e["envelope"]["event_id"] for e in good)  # every good one, once
    rows = quarantined(cfg)
    assert sorted(r["reason"] for r in rows) == sorted(expected_bad)
    assert report.rejected == len(expected_bad)
    for row in rows:
        assert row["source"] == "kafka"
        assert row["location"].startswith(f"{topic}/")
        assert row["raw"] == poison[row["reason"]]
        assert row["error"]
    letters = _dead_letters(cfg, len(expected_bad))
    assert sorted(r.value for r in letters) == sorted(poison[r] for r in expected_bad)
    headers = dict(letters[0].headers)
    assert headers["vtforge.reason"].decode() in poison
    assert headers["vtforge.source"].decode().startswith(f"{topic}/")


def test_status_shows_lag_then_none_after_ingest(kafka_ws: KafkaWorkspace) -> None:
    cfg = kafka_ws.config()
    produce(cfg, [rollout(i, tag=kafka_ws.tag) for i in range(120)])
    topic = cfg.forge.events.topic("rollout")
    before = [lag for lag in topic_lags(cfg) if lag.topic == topic]
    assert sum(lag.lag for lag in before) == 120
    Ingestor(cfg, once=True).run()
    after = [lag for lag in topic_lags(cfg) if lag.topic == topic]
    assert sum(lag.lag for lag in after) == 0
    assert sum(lag.end for lag in after) == 120
    result = CliRunner().invoke(app, ["ingest", "status"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "total lag 0" in result.output
    assert "rollout" in result.output
    # the same numbers as events: through the configured sink (Kafka here), then ingested
    assert "ingest_progress events" in result.output
    Ingestor(cfg, once=True).run()
    files = landing_files(cfg.landing_dir, ["ingest_progress"])
    progress = [r for f in files for r in pq.read_table(f).to_pylist() if r["topic"] == topic]
    assert progress and sum(r["lag"] for r in progress) == 0
    assert sum(r["end_offset"] for r in progress) == 120


def test_sigterm_finishes_the_batch_and_commits(kafka_ws: KafkaWorkspace) -> None:
    cfg = kafka_ws.config()
    ids = produce(cfg, [rollout(i, tag=kafka_ws.tag) for i in range(500)])
    proc = ingest_process(kafka_ws.root)
    try:
        wait_until(lambda: len(landed_ids(cfg)) == 500, 60, "the service to ingest 500 events")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "ingested 500 events" in out
    assert sorted(landed_ids(cfg)) == sorted(ids)
    assert sum(lag.lag for lag in topic_lags(cfg)) == 0  # committed before it left
    members = read_members(cfg.data_dir / "ingest" / "members")
    assert members and members[0].get("stopped")


class _CrashBeforeCommit(BaseException):
    """Stands in for a kill -9 that lands after the files are durable but before the commit."""


class _CrashingIngestor(Ingestor):
    def _commit(self, offsets, deadline):
        raise _CrashBeforeCommit


def test_crash_between_write_and_commit_then_other_batch_sizes_is_exact(make_kafka_workspace) -> None:
    # The replay cuts batches differently (other size), so most of its file names differ from the
    # dead attempt's: the uncommitted files must be swept, not left beside the new ones. A replay
    # batch may still happen to cover the same offsets (the name is deterministic), so a file is
    # told apart by its version (inode and mtime), not by its name.
    ws = make_kafka_workspace()
    cfg = ws.config()
    ids = produce(cfg, [rollout(i, tag=ws.tag) for i in range(900)])
    with pytest.raises(_CrashBeforeCommit):
        _CrashingIngestor(cfg, max_events=100).run()
    orphans = _file_versions(cfg.landing_dir)
    assert orphans  # durable files of a batch that was never committed
    Ingestor(cfg, once=True, max_events=70).run()
    landed = landed_ids(cfg)
    assert len(landed) == 900 and set(landed) == set(ids)
    assert not orphans & _file_versions(cfg.landing_dir)


def _file_versions(root: Path) -> set[tuple[str, int, int]]:
    versions = set()
    for path in landing_files(root):
        try:
            stat = path.stat()
            versions.add((path.name, stat.st_ino, stat.st_mtime_ns))
        except FileNotFoundError:  # swept meanwhile
            continue
    return versions


@pytest.mark.parametrize("workers", [0, 1], ids=["writer-thread", "worker-process"])
def test_confluent_framed_events_ingest_through_the_schema_registry(
    make_kafka_workspace, registry_url: str, workers: int
) -> None:
    ws = make_kafka_workspace(
        forge__events={"schema_registry_url": registry_url},
        forge__events__kafka={"ingest_workers": workers},
    )
    cfg = ws.config()
    events = [rollout(i, tag=ws.tag) for i in range(120)]
    ids = produce(cfg, events)  # KafkaSink registers the schema and frames with its id
    raw = _read_topic(cfg, cfg.forge.events.topic("rollout"), len(events), timeout_s=60)
    assert {r.value[:1] for r in raw} == {b"\x00"}  # Confluent framing, not single-object
    report = Ingestor(cfg, once=True).run()
    assert report.rejected == 0 and quarantined(cfg) == []
    assert sorted(landed_ids(cfg)) == sorted(ids)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1], ids=["writer-thread", "worker-process"])
def test_sigkill_at_random_points_then_restart_is_exact(make_kafka_workspace, workers: int) -> None:
    ws = make_kafka_workspace(
        forge__events={"flush_max_events": 40, "flush_interval_s": 0.2},
        forge__events__kafka={"ingest_workers": workers},
    )
    cfg = ws.config()
    n = 3000
    ids = produce(cfg, [rollout(i, tag=ws.tag) for i in range(n)])
    rng = random.Random(7)
    kills = 0
    for _ in range(4):
        # A file counts as written when it is new or rewritten (a successor sweeps and rewrites
        # the killed attempt's uncommitted files under the same names, so counting is not enough).
        before = _file_versions(cfg.landing_dir)
        proc = ingest_process(ws.root, "--instance-id", "crashy")  # static: takes over at once
        try:
            wait_until(
                lambda b=before, p=proc: bool(_file_versions(cfg.landing_dir) - b) or p.poll() is not None,
                60,
                "the ingestor to write a file",
                every_s=0.01,
            )
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
    assert kills >= 3  # it really was killed mid-work (most runs die long before draining)
    final = ingest_process(ws.root, "--once", "--instance-id", "crashy")
    out, _ = final.communicate(timeout=120)
    assert final.returncode == 0, out
    landed = landed_ids(cfg)
    assert len(landed) == n, f"{len(landed) - len(set(landed))} duplicates, {n - len(set(landed))} missing"
    assert set(landed) == set(ids)
    leftovers = [p for p in cfg.landing_dir.rglob("*") if p.name.endswith(".inprogress")]
    assert leftovers == [] or all(".inprogress" in p.name for p in leftovers)  # never visible as parquet


@pytest.mark.slow
def test_two_ingestors_in_one_group_split_partitions(make_kafka_workspace) -> None:
    ws = make_kafka_workspace(forge__events__kafka={"partitions": 4})
    cfg = ws.config()
    n = 2000
    ids = produce(cfg, [rollout(i, tag=ws.tag, tasks=40) for i in range(n // 2)])
    procs = [ingest_process(ws.root, "-v"), ingest_process(ws.root, "-v")]
    members_dir = cfg.data_dir / "ingest" / "members"
    split: list[set[str]] = []

    def rollout_keys(keys: object) -> set[str]:
        return {k for k in keys if k.startswith(f"{ws.tag}.rollout/")}  # type: ignore[attr-defined]

    def both_live_and_split() -> bool:
        live = [m for m in read_members(members_dir) if m["live"]]
        owners = [rollout_keys(m["owned"]) for m in live]
        if len(live) == 2 and all(owners) and not (owners[0] & owners[1]):
            split[:] = owners
            return True
        return False

    try:
        wait_until(both_live_and_split, 90, "two live members sharing the rollout partitions", every_s=0.2)
        # the second half arrives while both members run: each ingests its own partitions
        ids += produce(cfg, [rollout(i, tag=ws.tag, tasks=40) for i in range(n // 2, n)])
        wait_until(lambda: len(landed_ids(cfg)) >= n, 90, "all events to land", every_s=0.2)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        outs = [proc.communicate(timeout=60)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    assert split[0] | split[1] == {f"{ws.tag}.rollout/{p}" for p in range(4)}
    members = read_members(members_dir)
    assert len(members) == 2
    wrote = [rollout_keys(k for k, v in m["partitions"].items() if v["events"]) for m in members]
    assert wrote[0] and wrote[1]  # both did work (a partition may have moved once, at the join)
    landed = landed_ids(cfg)
    assert len(landed) == n and set(landed) == set(ids)
    assert sum(m["totals"]["events"] for m in members) == n


@pytest.mark.slow
def test_broker_restart_mid_stream_loses_no_acknowledged_event(make_kafka_workspace) -> None:
    ws = make_kafka_workspace(forge__events__kafka={"delivery_timeout_ms": 120000})
    if not ws.broker.owned:
        pytest.skip("the broker was not started by this test session, so it is not ours to restart")
    cfg = ws.config()
    broker = ws.broker.broker
    acked: list[str] = []
    failed: list[str] = []
    stop = threading.Event()

    def produce_stream() -> None:
        i = 0
        with sink_from_config(cfg) as sink:
            while not stop.is_set():
                chunk = [rollout(i + j, tag=ws.tag) for j in range(50)]
                i += 50
                for event in chunk:
                    sink.emit(event)
                try:
                    sink.flush()
                    acked.extend(e["envelope"]["event_id"] for e in chunk)
                except SinkError:
                    failed.extend(e["envelope"]["event_id"] for e in chunk)
                time.sleep(0.02)

    service = ingest_process(ws.root)
    producer = threading.Thread(target=produce_stream)
    producer.start()
    try:
        wait_until(lambda: len(acked) >= 500, 60, "acknowledged events before the restart")
        broker.stop()
        time.sleep(1.0)
        broker.start(wait_s=120)
        mark = len(acked)
        wait_until(lambda: len(acked) >= mark + 500, 120, "acknowledged events after the restart")
        stop.set()
        producer.join(timeout=180)
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=120)
    finally:
        stop.set()
        if service.poll() is None:
            service.kill()
    final = ingest_process(ws.root, "--once")
    out, _ = final.communicate(timeout=180)
    assert final.returncode == 0, out
    landed = landed_ids(cfg)
    assert set(acked) <= set(landed), f"{len(set(acked) - set(landed))} acknowledged events lost"
    assert len(landed) == len(set(landed))  # and nothing twice
    assert set(landed) <= set(acked) | set(failed)  # nothing that was never sent
    print(f"restart: acknowledged {len(acked)}, flush errors {len(failed)}, landed {len(landed)}")
