"""Arrow schemas come from the Avro schemas, and decoded batches convert without loss."""

from __future__ import annotations

import pyarrow as pa
import pytest

from vtforge.fixtures.events import generate_events
from vtforge.schemas import Codec, default_catalog
from vtforge.schemas.arrow import arrow_type, to_record_batch

CATALOG = default_catalog()


def test_type_mapping() -> None:
    assert arrow_type(["null", "string"]) == (pa.string(), True)
    assert arrow_type({"type": "long", "logicalType": "timestamp-micros"})[0] == pa.timestamp("us", tz="UTC")
    assert arrow_type({"type": "map", "values": "double"})[0] == pa.map_(pa.string(), pa.float64())
    assert arrow_type({"type": "enum", "name": "E", "symbols": ["a"]})[0] == pa.string()
    with pytest.raises(TypeError):
        arrow_type(["null", "string", "int"])


@pytest.mark.parametrize("event_type", sorted({e["envelope"]["event_type"] for e in generate_events(2, 0)}))
def test_decoded_batch_round_trips_through_arrow(event_type: str) -> None:
    codec = Codec()
    events = [
        codec.decode(codec.encode(e))
        for e in generate_events(3, 0)
        if e["envelope"]["event_type"] == event_type
    ]
    schema = CATALOG.current(event_type).arrow_schema
    batch = to_record_batch(events, schema)
    assert batch.schema.equals(schema, check_metadata=True)
    assert batch.num_rows == len(events)
    assert batch.to_pylist(maps_as_pydicts="strict") == events
