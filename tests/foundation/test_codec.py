"""Codec: round trips for every event type, framing and every typed failure."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.foundation.avro_strategies import strategy_for
from vtforge.fixtures.events import generate_events
from vtforge.schemas import (
    BadMagicError,
    Codec,
    SchemaViolationError,
    TruncatedPayloadError,
    UnknownSchemaError,
    default_catalog,
    new_event,
)
from vtforge.schemas.catalog import EventSchema

CATALOG = default_catalog()
CURRENT = [CATALOG.current(t) for t in CATALOG.event_types]


def _event_strategy(schema: EventSchema) -> st.SearchStrategy[dict]:
    def fix(event: dict) -> dict:
        event["envelope"]["event_type"] = schema.event_type
        event["envelope"]["schema_version"] = schema.version
        return event

    return strategy_for(schema.parsed).map(fix)


@pytest.mark.parametrize("schema", CURRENT, ids=lambda s: s.name)
def test_round_trip_every_event_type(schema: EventSchema) -> None:
    codec = Codec()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_event_strategy(schema))
    def check(event: dict) -> None:
        payload = codec.encode(event)
        assert payload[:2] == b"\xc3\x01"
        assert payload[2:10] == schema.fingerprint
        assert codec.decode(payload) == event

    check()


def test_every_catalogued_event_type_is_covered_by_the_synthetic_stream() -> None:
    produced = {e["envelope"]["event_type"] for e in generate_events(3, 0)}
    # agent_step, evaluation_result, skill_evaluation and ingest_progress come from live sessions,
    # eval runs, skill evaluations and the Kafka ingestor, not from self-play
    assert set(CATALOG.event_types) - produced <= {
        "agent_step",
        "evaluation_result",
        "skill_evaluation",
        "ingest_progress",
        "policy_promoted",  # vtforge gates --promote and a forced GRPO start
        "corpus_shard_written",  # vtforge corpus build
    }


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification defines it (Rabin fingerprint, empty = 0xc15d213aa4d7a795)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_single_object_header_is_the_crc64_avro_of_the_canonical_form() -> None:
    """The header is C3 01 then the schema's CRC-64-AVRO, little-endian, as the Avro spec frames it."""
    from fastavro.schema import to_parsing_canonical_form

    assert _crc64_avro(b'"int"') == 0x7275D51A3F395C8F  # the specification's test vector
    event = _reward()
    payload = Codec().encode(event)
    schema = Codec().catalog.current("reward_assigned")
    canonical = to_parsing_canonical_form(schema.parsed).encode()
    assert payload[:2] == b"\xc3\x01"
    assert payload[2:10] == _crc64_avro(canonical).to_bytes(8, "little")


def _reward() -> dict:
    return new_event(
        "reward_assigned",
        {"reward_id": "r", "subject_kind": "patch", "subject_id": "p", "reward": 1.0, "outcome": "resolved"},
        producer="test",
        key="k",
    )


def test_unknown_fingerprint_is_named() -> None:
    payload = bytearray(Codec().encode(_reward()))
    payload[2:10] = b"\x01" * 8
    with pytest.raises(UnknownSchemaError, match="0101010101010101"):
        Codec().decode(bytes(payload))


@pytest.mark.parametrize(
    ("cut", "error"),
    [
        (1, BadMagicError),  # C3 alone is no magic
        (5, TruncatedPayloadError),  # inside the fingerprint
        (9, TruncatedPayloadError),
        (20, TruncatedPayloadError),  # inside the body
        (-1, TruncatedPayloadError),
    ],
)
def test_truncated_payload(cut: int, error: type[Exception]) -> None:
    payload = Codec().encode(_reward())
    with pytest.raises(error) as info:
        Codec().decode(payload[:cut])
    assert type(info.value) is error
    assert info.value.reason == ("bad_magic" if error is BadMagicError else "truncated")


def test_truncated_body_is_truncation() -> None:
    payload = Codec().encode(_reward())
    with pytest.raises(TruncatedPayloadError):
        Codec().decode(payload[:-4])


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(TruncatedPayloadError, match="bytes left"):
        Codec().decode(Codec().encode(_reward()) + b"\x00\x00")


def test_garbage_has_bad_magic() -> None:
    with pytest.raises(BadMagicError):
        Codec().decode(b"hello world")


def test_schema_violation_names_the_field() -> None:
    event = _reward()
    event["reward"] = "high"
    with pytest.raises(SchemaViolationError, match=r"field reward must be double, got str"):
        Codec().encode(event)
    event = _reward()
    del event["envelope"]["producer"]
    with pytest.raises(SchemaViolationError, match=r"field envelope\.producer is missing"):
        Codec().encode(event)


def test_unknown_event_type_on_encode() -> None:
    event = _reward()
    event["envelope"]["event_type"] = "no_such_type"
    with pytest.raises(UnknownSchemaError, match="no_such_type"):
        Codec().encode(event)


class _Registry:
    """A schema-id resolver over a dict (the Confluent framing only needs ids both ways)."""

    def __init__(self) -> None:
        self.ids: dict[bytes, int] = {}
        self.schemas: dict[int, EventSchema] = {}

    def id_for(self, schema: EventSchema) -> int:
        if schema.fingerprint not in self.ids:
            self.ids[schema.fingerprint] = len(self.ids) + 100
            self.schemas[self.ids[schema.fingerprint]] = schema
        return self.ids[schema.fingerprint]

    def schema_for(self, schema_id: int) -> EventSchema:
        return self.schemas[schema_id]


def test_confluent_wire_format_round_trip() -> None:
    registry = _Registry()
    codec = Codec(registry=registry)
    event = _reward()
    payload = codec.encode(event)
    assert payload[0] == 0
    (schema_id,) = struct.unpack(">I", payload[1:5])
    assert registry.schema_for(schema_id).event_type == "reward_assigned"
    assert codec.decode(payload) == Codec().decode(Codec().encode(event))
    with pytest.raises(UnknownSchemaError, match="registry id 7"):
        codec.decode(b"\x00" + struct.pack(">I", 7) + payload[5:])
    with pytest.raises(UnknownSchemaError, match="no schema registry"):
        Codec().decode(payload)
