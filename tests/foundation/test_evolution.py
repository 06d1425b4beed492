"""Schema evolution: every version reads its neighbour's data (Avro schema resolution)."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings

from tests.foundation.avro_strategies import strategy_for
from vtforge.schemas import Codec, default_catalog
from vtforge.schemas.catalog import AVRO_DIR, ENVELOPE_FILE, EventSchema, build_event_schema

CATALOG = default_catalog()
ENVELOPE = json.loads((AVRO_DIR / ENVELOPE_FILE).read_text())
PAIRS = [
    (versions[i - 1], versions[i])
    for t in CATALOG.event_types
    for versions in [CATALOG.versions(t)]
    for i in range(1, len(versions))
]


def assert_readable(writer: EventSchema, reader: EventSchema, max_examples: int = 20) -> None:
    """Raise unless every generated record written with ``writer`` decodes with ``reader``."""

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy_for(writer.parsed))
    def check(record: dict) -> None:
        buffer = io.BytesIO()
        schemaless_writer(buffer, writer.parsed, record)
        buffer.seek(0)
        decoded = schemaless_reader(buffer, writer.parsed, reader.parsed)
        reader_fields = {f["name"] for f in reader.parsed["fields"]}
        assert {k: v for k, v in record.items() if k in reader_fields} == {
            k: v for k, v in decoded.items() if k in record
        }

    check()


def test_there_is_history_to_check() -> None:
    assert PAIRS, "at least one event type has two versions"


@pytest.mark.parametrize("old,new", PAIRS, ids=lambda s: s.name)
def test_current_reads_previous(old: EventSchema, new: EventSchema) -> None:
    assert_readable(old, new)


@pytest.mark.parametrize("old,new", PAIRS, ids=lambda s: s.name)
def test_previous_reads_current(old: EventSchema, new: EventSchema) -> None:
    assert_readable(new, old)


_ROLLOUT_V1 = CATALOG.version("rollout", 1)


@settings(max_examples=10, deadline=None)
@given(strategy_for(_ROLLOUT_V1.parsed))
def test_codec_resolves_old_payloads_to_the_current_version(record: dict) -> None:
    old = _ROLLOUT_V1
    buffer = io.BytesIO()
    buffer.write(b"\xc3\x01" + old.fingerprint)
    schemaless_writer(buffer, old.parsed, record)
    decoded = Codec().decode(buffer.getvalue())
    assert decoded["cached_prompt_tokens"] is None  # the new optional field, from its default
    assert decoded["rollout_id"] == record["rollout_id"]


def _variant(schema: EventSchema, mutate: Callable[[list[dict[str, Any]]], None]) -> EventSchema:
    source = copy.deepcopy(schema.source)
    mutate(source["fields"])
    return build_event_schema(source, schema.event_type, schema.version + 1, ENVELOPE, schema.path)


@pytest.mark.parametrize("schema", [CATALOG.current(t) for t in CATALOG.event_types], ids=lambda s: s.name)
def test_adding_an_optional_field_is_compatible(schema: EventSchema) -> None:
    new = _variant(schema, lambda f: f.append({"name": "added", "type": ["null", "string"], "default": None}))
    assert_readable(schema, new, max_examples=5)
    assert_readable(new, schema, max_examples=5)


@pytest.mark.parametrize("schema", [CATALOG.current(t) for t in CATALOG.event_types], ids=lambda s: s.name)
def test_removing_a_required_field_is_incompatible(schema: EventSchema) -> None:
    required = next(f for f in schema.source["fields"][1:] if "default" not in f)
    new = _variant(schema, lambda f: f.remove(next(x for x in f if x["name"] == required["name"])))
    with pytest.raises(Exception, match=required["name"]):
        assert_readable(new, schema, max_examples=5)  # old readers cannot fill the missing field
