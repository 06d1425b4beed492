"""Batch decoding: the native (arrow-avro) path gives the codec's rows, and the codec judges bad bytes."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.foundation.avro_strategies import strategy_for
from tests.support import require_service
from vtforge.fixtures.events import generate_events
from vtforge.schemas import Codec, default_catalog
from vtforge.schemas.batch import BatchDecoder, native_available
from vtforge.schemas.catalog import EventSchema
from vtforge.schemas.registry import SchemaRegistryClient
from vtforge.transport.landing import write_events

CATALOG = default_catalog()
CODEC = Codec()


def _encode_with(schema: EventSchema, record: dict) -> bytes:
    """A single-object payload written with ``schema`` (any version, not just the current one)."""
    buffer = io.BytesIO()
    buffer.write(b"\xc3\x01" + schema.fingerprint)
    schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def _native() -> BatchDecoder:
    require_service(native_available(), "the vtforge_native module (built by `make setup` from native/)")
    decoder = BatchDecoder()
    assert decoder.native
    return decoder


def test_native_decoder_is_built() -> None:
    assert _native().native


@pytest.mark.parametrize("schema", CATALOG.all(), ids=lambda s: s.name)
def test_native_rows_equal_the_codec_rows_for_every_schema_version(schema: EventSchema) -> None:
    decoder = _native()
    reference = BatchDecoder(native=False)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(strategy_for(schema.parsed), min_size=1, max_size=4))
    def check(records: list[dict]) -> None:
        payloads = [_encode_with(schema, r) for r in records]
        fast, slow = decoder.decode(payloads), reference.decode(payloads)
        hinted = decoder.decode(payloads, expected=schema.event_type)
        assert fast.rejected == [] and slow.rejected == [] and hinted.rejected == []
        assert fast.native_rows == len(records) == hinted.native_rows and slow.native_rows == 0
        assert hinted.tables[schema.event_type].equals(fast.tables[schema.event_type])
        table = fast.tables[schema.event_type]
        assert table.schema.equals(CATALOG.current(schema.event_type).arrow_schema, check_metadata=True)
        assert table.equals(slow.tables[schema.event_type])

    check()


def test_bad_payloads_are_rejected_with_the_codec_reason_and_good_ones_keep_their_order() -> None:
    decoder = _native()
    events = list(generate_events(3, 0))
    good = [CODEC.encode(e) for e in events]
    rollout_v1 = _encode_with(CATALOG.version("rollout", 1), _a_rollout_v1())
    known = good[0][:10]
    poison = {
        2: b"garbage bytes",
        5: known + os.urandom(40),  # a known header over a body that is not one
        7: good[3][:-7],  # truncated
        9: good[4] + b"\x02\x04xy",  # trailing bytes
        11: b"\xc3\x01" + b"\x00" * 8 + good[5][10:],  # unknown fingerprint
        13: b"",
        14: None,
    }
    payloads: list[bytes | None] = list(good)
    for index, bad in sorted(poison.items()):
        payloads.insert(index, bad)
    payloads.append(rollout_v1)

    fast = decoder.decode(payloads)
    slow = BatchDecoder(native=False).decode(payloads)
    hinted = decoder.decode(payloads, expected="rollout")  # a wrong hint costs time, not rows
    assert [(i, e.reason) for i, e in hinted.rejected] == [(i, e.reason) for i, e in fast.rejected]
    assert all(hinted.tables[t].equals(fast.tables[t]) for t in fast.tables)

    expected_reasons = {}
    for index, payload in enumerate(payloads):
        try:
            CODEC.decode(payload or b"")
        except Exception as exc:
            expected_reasons[index] = exc.reason  # type: ignore[attr-defined]
    assert {i: e.reason for i, e in fast.rejected} == expected_reasons
    assert set(expected_reasons) >= {2, 7, 9, 11, 13, 14}
    assert fast.good == len(payloads) - len(expected_reasons)
    assert fast.native_rows > 0  # types without a bad payload stayed on the native path
    assert fast.tables.keys() == slow.tables.keys()
    for event_type, table in fast.tables.items():
        assert table.equals(slow.tables[event_type]), event_type
        ids = table.column("envelope").combine_chunks().field("event_id").to_pylist()
        wanted = [
            CODEC.decode(p)["envelope"]["event_id"]
            for i, p in enumerate(payloads)
            if i not in expected_reasons and CODEC.decode(p)["envelope"]["event_type"] == event_type
        ]
        assert ids == wanted  # input order, old and new versions interleaved


def _a_rollout_v1() -> dict:
    event = next(e for e in generate_events(2, 1) if e["envelope"]["event_type"] == "rollout")
    return {k: v for k, v in event.items() if k not in ("cached_prompt_tokens", "num_turns")}


def test_a_batch_over_two_days_lands_in_two_day_folders(tmp_path: Path) -> None:
    day = datetime(2026, 11, 27, 23, 59, tzinfo=UTC)
    events = [e for e in generate_events(4, 0) if e["envelope"]["event_type"] == "rollout"][:6]
    for i, event in enumerate(events):
        event["envelope"]["occurred_at"] = day + timedelta(minutes=i)
    schema = CATALOG.current("rollout")
    files = write_events(tmp_path, schema, events, "two-days")
    rows = {f.parent.name: pq.read_table(f).num_rows for f in files}
    assert rows == {"date=2026-11-27": 1, "date=2026-11-28": len(events) - 1}
    table = pa.concat_tables(pq.read_table(f, schema=schema.arrow_schema) for f in files)
    assert sorted(table.column("envelope").combine_chunks().field("event_id").to_pylist()) == sorted(
        e["envelope"]["event_id"] for e in events
    )


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_corrupted_payloads_get_the_same_verdict_on_both_paths(data: st.DataObject) -> None:
    """Flip bytes in valid payloads: the native path may refuse a group, never disagree."""
    decoder = _native()
    events = _SAMPLE_EVENTS
    payloads = []
    for _ in range(data.draw(st.integers(1, 6), label="payloads")):
        payload = bytearray(CODEC.encode(data.draw(st.sampled_from(events), label="event")))
        for _ in range(data.draw(st.integers(0, 3), label="flips")):
            at = data.draw(st.integers(10, len(payload) - 1), label="at")  # keep the header
            payload[at] = data.draw(st.integers(0, 255), label="byte")
        if data.draw(st.booleans(), label="cut"):
            payload = payload[: data.draw(st.integers(10, len(payload)), label="length")]
        payloads.append(bytes(payload))
    fast = decoder.decode(payloads)
    slow = BatchDecoder(native=False).decode(payloads)
    hinted = decoder.decode(payloads, expected="rollout")  # a wrong hint costs time, not rows
    assert [(i, e.reason) for i, e in hinted.rejected] == [(i, e.reason) for i, e in fast.rejected]
    assert all(hinted.tables[t].equals(fast.tables[t]) for t in fast.tables)
    assert [(i, e.reason) for i, e in fast.rejected] == [(i, e.reason) for i, e in slow.rejected]
    assert fast.tables.keys() == slow.tables.keys()
    for event_type, table in fast.tables.items():
        assert table.equals(slow.tables[event_type])


_SAMPLE_EVENTS = [e for e in generate_events(2, 0)][:12]


@pytest.mark.parametrize("event_type", ["task_registered", "rollout"])
def test_every_single_byte_corruption_gets_the_same_verdict(event_type: str) -> None:
    """Byte 3 (zigzag -2) everywhere: invalid union branches and enum indices included.

    arrow-avro alone reads any non-zero ``["null", T]`` branch as T and leaves enum indices
    unchecked; the reference-reader check in ``native/`` must make it refuse those.
    """
    decoder, reference = _native(), BatchDecoder(native=False)
    payload = CODEC.encode(next(e for e in _SAMPLE_EVENTS if e["envelope"]["event_type"] == event_type))
    disagreements = []
    for at in range(10, len(payload)):
        corrupted = [payload[:at] + b"\x03" + payload[at + 1 :]]
        fast, slow = decoder.decode(corrupted), reference.decode(corrupted)
        same_verdict = [e.reason for _, e in fast.rejected] == [e.reason for _, e in slow.rejected]
        same_rows = bool(fast.rejected) or fast.tables[event_type].equals(slow.tables[event_type])
        if not (same_verdict and same_rows):
            disagreements.append(at)
    assert disagreements == []


def test_confluent_framed_payloads_take_the_native_path_with_the_registry(registry_url: str) -> None:
    _native()
    codec = Codec(registry=SchemaRegistryClient(registry_url, subject_for=lambda t: f"{t}-value"))
    events = _SAMPLE_EVENTS
    payloads = [codec.encode(e) for e in events]
    old = CATALOG.version("rollout", 1)
    old_id = codec.registry.id_for(old)  # type: ignore[union-attr]
    payloads.insert(3, b"\x00" + old_id.to_bytes(4, "big") + _encode_with(old, _a_rollout_v1())[10:])
    good = len(payloads)
    payloads.insert(5, payloads[0][:-9])  # truncated
    payloads.insert(7, b"\x00" + (999).to_bytes(4, "big") + payloads[1][5:])  # an id nobody registered
    payloads.insert(8, CODEC.encode(events[2]))  # single-object framing beside Confluent

    fast = BatchDecoder(codec).decode(payloads)
    slow = BatchDecoder(codec, native=False).decode(payloads)
    assert [(i, e.reason) for i, e in fast.rejected] == [(5, "truncated"), (7, "unknown_schema")]
    assert [(i, e.reason) for i, e in slow.rejected] == [(5, "truncated"), (7, "unknown_schema")]
    assert fast.good == good + 1
    assert 0 < fast.native_rows < fast.good  # the group holding the truncated one fell back
    for event_type, table in fast.tables.items():
        assert table.equals(slow.tables[event_type]), event_type
    clean = [p for i, p in enumerate(payloads) if i not in (5, 7)]
    assert BatchDecoder(codec).decode(clean).native_rows == len(clean)
