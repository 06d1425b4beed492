"""Binary codec for vtforge events, on fastavro.

Two framings, both standard:

* **Avro single-object encoding** (default): ``0xC3 0x01`` + the writer schema's 8-byte
  CRC-64-AVRO fingerprint (little-endian) + the Avro binary body. Self-describing without a
  registry: the fingerprint picks the writer schema from the catalog.
* **Confluent wire format** (when a schema registry is configured): ``0x00`` + 4-byte big-endian
  schema id + the Avro binary body; ids come from the registry (see ``vtforge.schemas.registry``).

Decoding always resolves to the *current* version of the event type (Avro schema resolution), so
consumers see one shape per type whatever version the producer wrote. Every failure raises a
subclass of :class:`CodecError` that says which failure it was.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Protocol

from fastavro import schemaless_reader, schemaless_writer

from vtforge.schemas.catalog import EventSchema, SchemaCatalog, UnknownEventType, default_catalog

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_HEADER = len(SINGLE_OBJECT_MAGIC) + 8


class CodecError(ValueError):
    """Base of every decode/encode failure."""

    reason = "codec_error"


class BadMagicError(CodecError):
    """The payload does not start with a known framing marker."""

    reason = "bad_magic"


class UnknownSchemaError(CodecError):
    """The fingerprint (or registry id, or event type) names no schema we know."""

    reason = "unknown_schema"


class TruncatedPayloadError(CodecError):
    """The payload ends before the record does (or has bytes left over after it)."""

    reason = "truncated"


class SchemaViolationError(CodecError):
    """The event does not conform to its schema; the message names the field."""

    reason = "schema_violation"


class SchemaIdResolver(Protocol):
    """What the Confluent framing needs from a schema registry."""

    def id_for(self, schema: EventSchema) -> int: ...

    def schema_for(self, schema_id: int) -> EventSchema: ...


class Codec:
    """Encode events to bytes and back; one instance per process is enough (it is stateless)."""

    def __init__(
        self, catalog: SchemaCatalog | None = None, *, registry: SchemaIdResolver | None = None
    ) -> None:
        self.catalog = catalog or default_catalog()
        self.registry = registry

    # --- encode --------------------------------------------------------------------------------
    def schema_of(self, event: dict[str, Any]) -> EventSchema:
        try:
            event_type = event["envelope"]["event_type"]
        except (KeyError, TypeError):
            raise SchemaViolationError("field envelope.event_type is missing") from None
        try:
            return self.catalog.current(event_type)
        except UnknownEventType:
            raise UnknownSchemaError(f"no schema for event_type {event_type!r}") from None

    def encode(self, event: dict[str, Any]) -> bytes:
        schema = self.schema_of(event)
        buffer = io.BytesIO()
        if self.registry is None:
            buffer.write(SINGLE_OBJECT_MAGIC)
            buffer.write(schema.fingerprint)
        else:
            buffer.write(CONFLUENT_MAGIC)
            buffer.write(struct.pack(">I", self.registry.id_for(schema)))
        try:
            schemaless_writer(buffer, schema.parsed, event, strict_allow_default=True)
        except Exception as exc:  # fastavro raises many types; name the field instead
            raise SchemaViolationError(explain_violation(event, schema, exc)) from None
        return buffer.getvalue()

    # --- decode --------------------------------------------------------------------------------
    def writer_schema(self, payload: bytes) -> tuple[EventSchema, int]:
        """The writer schema named by a payload's header, and where the body starts."""
        if payload[:2] == SINGLE_OBJECT_MAGIC:
            if len(payload) < _HEADER:
                raise TruncatedPayloadError(f"payload of {len(payload)} bytes ends inside the header")
            fp = payload[2:_HEADER]
            schema = self.catalog.by_fingerprint(fp)
            if schema is None:
                raise UnknownSchemaError(f"unknown schema fingerprint {fp.hex()}")
            return schema, _HEADER
        if payload[:1] == CONFLUENT_MAGIC and len(payload) >= 1:
            if len(payload) < 5:
                raise TruncatedPayloadError(f"payload of {len(payload)} bytes ends inside the header")
            if self.registry is None:
                raise UnknownSchemaError("Confluent-framed payload but no schema registry is configured")
            (schema_id,) = struct.unpack(">I", payload[1:5])
            try:
                return self.registry.schema_for(schema_id), 5
            except KeyError:
                raise UnknownSchemaError(f"unknown schema registry id {schema_id}") from None
        raise BadMagicError(f"payload starts with {payload[:2].hex() or 'nothing'}, not c301 or 00")

    def decode(self, payload: bytes) -> dict[str, Any]:
        writer, start = self.writer_schema(payload)
        reader = self.catalog.current(writer.event_type)
        body = io.BytesIO(payload)
        body.seek(start)
        try:
            if writer is reader:
                record = schemaless_reader(body, writer.parsed, None)
            else:
                record = schemaless_reader(body, writer.parsed, reader.parsed)
        except (EOFError, struct.error, IndexError) as exc:
            raise TruncatedPayloadError(f"payload ends inside a {writer.name} record ({exc})") from None
        except Exception as exc:
            raise SchemaViolationError(f"body does not decode as {writer.name}: {exc}") from None
        if body.tell() != len(payload):
            raise TruncatedPayloadError(
                f"{len(payload) - body.tell()} bytes left after a {writer.name} record"
            )
        if not isinstance(record, dict):
            raise SchemaViolationError(
                f"body decodes to a {type(record).__name__}, not a {writer.name} record"
            )
        return record


def explain_violation(event: dict[str, Any], schema: EventSchema, exc: Exception) -> str:
    """One line naming the offending field (``rollout.v2: field envelope.producer is missing``)."""
    problem = find_violation(event, schema.parsed, "")
    return f"{schema.name}: {problem or exc}"


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "bytes": (bytes,),
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
}


def find_violation(value: Any, avro_type: Any, path: str) -> str | None:
    """The first place where ``value`` breaks ``avro_type``, as ``field PATH …``; None if it fits.

    Used only to explain a failed encode (the fast path is fastavro's writer itself).
    """
    where = f"field {path}" if path else "the event"
    if isinstance(avro_type, list):
        if value is None and "null" in avro_type:
            return None
        problems = [find_violation(value, b, path) for b in avro_type if b != "null"]
        return None if any(p is None for p in problems) else (problems[0] if problems else None)
    if isinstance(avro_type, str):
        if avro_type == "null":
            return None if value is None else f"{where} must be null, got {value!r}"
        expected = _PY_TYPES.get(avro_type)
        bad_bool = isinstance(value, bool) and avro_type in ("int", "long", "float", "double")
        if expected and (not isinstance(value, expected) or bad_bool):
            return f"{where} must be {avro_type}, got {type(value).__name__} {_clip(value)}"
        return None
    kind = avro_type.get("type")
    if avro_type.get("logicalType", "").startswith("timestamp"):
        from datetime import datetime

        ok = isinstance(value, (int, datetime)) and not isinstance(value, bool)
        return None if ok else f"{where} must be a timestamp, got {type(value).__name__} {_clip(value)}"
    if kind == "record":
        if not isinstance(value, dict):
            return f"{where} must be a record, got {type(value).__name__}"
        for field in avro_type["fields"]:
            sub = f"{path}.{field['name']}" if path else field["name"]
            if field["name"] not in value:
                if "default" not in field:
                    return f"field {sub} is missing"
                continue
            problem = find_violation(value[field["name"]], field["type"], sub)
            if problem:
                return problem
        return None
    if kind == "array":
        if not isinstance(value, (list, tuple)):
            return f"{where} must be an array, got {type(value).__name__}"
        for i, item in enumerate(value):
            problem = find_violation(item, avro_type["items"], f"{path}[{i}]")
            if problem:
                return problem
        return None
    if kind == "map":
        if not isinstance(value, dict):
            return f"{where} must be a map, got {type(value).__name__}"
        for key, item in value.items():
            problem = find_violation(item, avro_type["values"], f"{path}.{key}")
            if problem:
                return problem
        return None
    if kind == "enum":
        symbols = avro_type["symbols"]
        return None if value in symbols else f"{where} must be one of {symbols}, got {_clip(value)}"
    return find_violation(value, kind, path) if isinstance(kind, (str, list)) else None


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
