"""Codec throughput: Avro (single-object encoding) vs plain JSON, encode + decode + Arrow.

Both paths start from the same realistic rollout events (~1.3 KB each: a three-message chat with
reasoning) and end with the same typed Arrow table. The JSON path needs ISO strings for
timestamps and parses them back, exactly what a JSON transport would do. Ours decodes the way the
landing sink and the Kafka ingestor do (``vtforge.schemas.batch.BatchDecoder``: arrow-avro through
``vtforge_native`` when it is built); the per-record fastavro path is printed for reference.

    python bench/codec.py [--events N] [--repeats R]

Prints events/s for each path and ends with ``ratio: <avro/json> …`` (higher is better).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtforge.fixtures.events import generate_events
from vtforge.schemas import Codec, default_catalog
from vtforge.schemas.arrow import to_record_batch
from vtforge.schemas.batch import BatchDecoder
from vtforge.schemas.catalog import EventSchema


def rollouts(n: int) -> list[dict]:
    out: list[dict] = []
    seed = 0
    while len(out) < n:
        out += [e for e in generate_events(200, seed) if e["envelope"]["event_type"] == "rollout"]
        seed += 1
    return out[:n]


def avro_path(events: list[dict], codec: Codec, decoder: BatchDecoder) -> int:
    encode = codec.encode
    payloads = [encode(e) for e in events]
    return decoder.decode(payloads, expected="rollout").tables["rollout"].num_rows


def avro_per_record_path(events: list[dict], codec: Codec, schema: EventSchema) -> int:
    encode, decode = codec.encode, codec.decode
    payloads = [encode(e) for e in events]
    batch = to_record_batch([decode(p) for p in payloads], schema)
    return batch.num_rows


def _iso(value: object) -> str:
    assert isinstance(value, datetime)
    return value.isoformat()


def json_path(events: list[dict], schema: EventSchema) -> int:
    dumps, loads, parse = json.dumps, json.loads, datetime.fromisoformat
    payloads = [dumps(e, default=_iso).encode() for e in events]
    decoded = []
    for payload in payloads:
        event = loads(payload)
        event["envelope"]["occurred_at"] = parse(event["envelope"]["occurred_at"])
        decoded.append(event)
    batch = to_record_batch(decoded, schema)
    return batch.num_rows


def best_rate(fn: Callable[[], int], n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        assert fn() == n
        times.append(time.perf_counter() - started)
    return n / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    events = rollouts(args.events)
    codec = Codec()
    schema = default_catalog().current("rollout").arrow_schema
    size = sum(len(codec.encode(e)) for e in events[:1000]) / 1000
    json_size = sum(len(json.dumps(e, default=_iso)) for e in events[:1000]) / 1000
    decoder = BatchDecoder(codec)
    avro_path(events[:500], codec, decoder)  # warm-up (imports, caches)
    avro_per_record_path(events[:500], codec, schema)
    json_path(events[:500], schema)
    avro = best_rate(lambda: avro_path(events, codec, decoder), len(events), args.repeats)
    per_record = best_rate(lambda: avro_per_record_path(events, codec, schema), len(events), args.repeats)
    plain = best_rate(lambda: json_path(events, schema), len(events), args.repeats)
    how = "arrow-avro" if decoder.native else "fastavro: vtforge_native is not built"
    print(f"events: {len(events)} rollout events, avro {size:.0f} B/event, json {json_size:.0f} B/event")
    print(f"avro single-object + arrow ({how}): {avro:,.0f} events/s")
    print(f"avro, fastavro per record + from_pylist:   {per_record:,.0f} events/s")
    print(f"json + arrow (baseline):                   {plain:,.0f} events/s")
    ratio, smaller = avro / plain, size / json_size
    print(f"ratio: {ratio:.2f} (avro events/s over json events/s; payload {smaller:.2f}x the size)")


if __name__ == "__main__":
    main()
