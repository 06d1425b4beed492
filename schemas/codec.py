"""Binary codec for vtforge events, on fastavro.

Two framings, both standard:

* **Avro single-object encoding** (default): ``0xC3 0x01`` + the writer schema's 8-byte
  CRC-64-AVRO fingerprint (little-endian) + the Avro binary body. Self-describing without a
  registry: the fingerprint picks the writer schema from the catalog.
* **Confluent wire format** (when a schema registry is configured): ``0x00`` + 4-byte big-endian
  schema id + the Avro binary body; ids come from the registry (see ``schemas.registry``).

Decoding always resolves to the *current* version of the event type (Avro schema resolution), so
consumers see one shape per type whatever version the producer wrote. Every failure raises a
subclass of :class:`CodecError` that says which failure it was.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Protocol

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from schemas.catalog import EventSchema, SchemaCatalog, UnknownEventType, default_catalog

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
        return record  # type: ignore[return-value]


def explain_violation(event: dict[str, Any], schema: EventSchema, exc: Exception) -> str:
    """One line naming the offending field, from fastavro's validator when it can tell."""
    try:
        validate(event, schema.parsed, raise_errors=True, strict=True)
    except ValidationError as verr:
        details = "; ".join(_short(e) for e in verr.errors[:3])
        return f"{schema.name}: {details}"
    except Exception as other:  # validator itself tripped: fall back to the writer's error
        return f"{schema.name}: {other}"
    return f"{schema.name}: {exc}"


def _short(error: Any) -> str:
    text = str(error)
    # fastavro: "vtforge.events.Rollout.sample_index is <-1.5> of type <class 'float'> must be int"
    for prefix in ("vtforge.events.", "vtforge."):
        text = text.replace(prefix, "")
    return text
