"""Kafka → landing Parquet ingestion vs the raw consume ceiling, on a real local broker.

Produces N ~1 KB rollout events through ``KafkaSink`` (producer events/s), then reads the same
topic twice with fresh consumer groups and the same client module:

* **raw ceiling** — ``vtforge.kafka.client.Consumer`` polling and discarding every record;
* **ours** — ``vtforge.ingest.Ingestor(once=True)``: decode (arrow-avro via ``vtforge_native``),
  Arrow, Parquet (fsync + rename), commit; with the configured ``ingest_workers`` and the others;
  then once more with fastavro decoding only, to show what the native decoder buys.

Both are timed the same way: from subscribe to the last record (raw) / to the last commit (ours),
group join included, and both under the ingestor's garbage-collector setting. The broker is
started under a temporary data dir on its own port and stopped afterwards (or reused when one
already answers there).

    python bench/ingest.py [--events N] [--port P]

Ends with ``ratio: <ingest/raw> …`` (higher is better; target ≥ 0.5).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtforge.config import load_config
from vtforge.ingest import Ingestor, writer
from vtforge.ingest.ingestor import fewer_collections
from vtforge.kafka import LocalBroker, client
from vtforge.kafka.broker import port_open
from vtforge.schemas import new_event
from vtforge.schemas.batch import native_available
from vtforge.transport import sink_from_config


def rollout(i: int, tag: str) -> dict:
    return new_event(
        "rollout",
        {
            "rollout_id": f"{tag}-{i}",
            "role": "bugfixer",
            "model": "tiny-policy",
            "policy_version": "v3",
            "engine": "vllm",
            "sample_index": i % 40,
            "temperature": 1.0,
            "prompt_tokens": 812,
            "completion_tokens": 240,
            "latency_ms": 812.5,
            "stop_reason": "stop",
            "messages": [
                {"role": "system", "content": "You are BugFixer. Output a unified diff."},
                {"role": "user", "content": f"Issue {i}: parser drops the last token. " * 8},
                {
                    "role": "assistant",
                    "content": f"--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -{i},3 +{i},4 @@\n" * 6,
                },
            ],
            "parse_status": "ok",
        },
        producer="bench.ingest",
        key=f"{tag}-{i}",
        task_id=f"task-{i % 50}",
    )


def write_config(root: Path, port: int, tag: str, group: str, data_dir: str = ".forge") -> None:
    (root / "vtcode.toml").write_text(
        "[forge.events]\n"
        'sink = "kafka"\n'
        f'bootstrap_servers = "127.0.0.1:{port}"\n'
        f'topic_prefix = "{tag}."\n'
        f'dead_letter_topic = "{tag}.dead-letter"\n'
        "flush_max_events = 5000\n"
        "[forge.events.kafka]\n"
        f'consumer_group = "{group}"\n'
        "[forge.warehouse]\n"
        f'data_dir = "{data_dir}"\n'
    )


def raw_consume(cfg, topic: str, n: int) -> float:
    consumer = client.Consumer(
        client.Connection.from_config(cfg), group=f"raw-{uuid.uuid4().hex[:6]}", max_poll_records=5000
    )
    consumer.subscribe([topic], on_assigned=lambda _: None, on_revoked=lambda _: None)
    started = time.perf_counter()
    seen = 0
    while seen < n:
        for records in consumer.poll(0.5).values():
            seen += len(records)
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--port", type=int, default=39392)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=None,
        help="ingest_workers variants; the first is 'ours' (default: the configured value, then 1 and 2)",
    )
    args = parser.parse_args()
    n = args.events

    with tempfile.TemporaryDirectory(prefix="vtforge-bench-ingest-") as tmp:
        root = Path(tmp)
        broker = LocalBroker(root / "broker" / "kafka", port=args.port)
        owned = not port_open("127.0.0.1", args.port)
        if owned:
            started = time.perf_counter()
            broker.start(wait_s=180)
            print(f"broker: Apache Kafka {broker.version} started in {time.perf_counter() - started:.1f}s")
        try:
            tag = f"bench{uuid.uuid4().hex[:6]}"
            write_config(root, args.port, tag, f"{tag}-ingest")
            cfg = load_config(cwd=root)
            topic = cfg.forge.events.topic("rollout")
            default = cfg.forge.events.kafka.ingest_workers
            workers = args.workers or [default, *(w for w in (0, 1, 2) if w != default)]

            events = [rollout(i, tag) for i in range(n)]
            started = time.perf_counter()
            with sink_from_config(cfg, producer="bench.ingest") as sink:
                for event in events:
                    sink.emit(event)
            produce_s = time.perf_counter() - started

            with fewer_collections():  # the ingestor's GC setting, so both sides run alike
                raw_s = raw_consume(cfg, topic, n)

            variants = {}
            codec_only = None
            for w in workers:
                # a fresh group and landing dir per variant: each reads the whole topic
                write_config(root, args.port, tag, f"{tag}-ingest-w{w}", data_dir=f".forge-w{w}")
                report = Ingestor(load_config(cwd=root), once=True, workers=w).run()
                assert report.events == n, f"ingested {report.events} of {n}"
                variants[w] = report
            if native_available():  # what the arrow-avro decoder buys: the same run on fastavro alone
                write_config(root, args.port, tag, f"{tag}-ingest-codec", data_dir=".forge-codec")
                writer.native_decoding = False
                codec_only = Ingestor(load_config(cwd=root), once=True, workers=0).run()
                writer.native_decoding = True
                assert codec_only.events == n, f"ingested {codec_only.events} of {n}"
        finally:
            if owned:
                broker.stop()

    from vtforge.schemas import Codec

    size = sum(len(Codec().encode(e)) for e in events[:200]) / 200
    print(f"events: {n} rollouts ({size:,.0f} bytes each, Avro single-object), 3 partitions, 1 local broker")
    print(f"producer (KafkaSink, acks=all, idempotent): {n / produce_s:,.0f} events/s")
    print(f"raw consume ceiling (same client, discard):  {n / raw_s:,.0f} events/s ({raw_s:.2f}s)")
    for w, report in variants.items():
        label = "writer thread" if w == 0 else f"{w} worker process{'es' if w > 1 else ''}"
        print(
            f"ingest to landing Parquet, {label + ':':<20} {n / report.seconds:,.0f} events/s "
            f"({report.seconds:.2f}s incl. group join; {report.files} files, {report.commits} commits)"
        )
    if codec_only is not None:
        print(
            f"ingest, writer thread, fastavro only:    {n / codec_only.seconds:,.0f} events/s "
            f"({codec_only.seconds:.2f}s; without the native module)"
        )
    ours = variants[workers[0]].seconds
    print(
        f"ratio: {raw_s / ours:.2f} (ingest events/s with ingest_workers={workers[0]} over raw-consume "
        "events/s; target >= 0.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
