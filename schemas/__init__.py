"""Event schemas (Avro ``.avsc`` files in ``avro/``) and their codec.

The ``.avsc`` files are the single source of truth: the codec, the Arrow schemas of the landing
files and the warehouse's raw tables are all derived from them.
"""

from vtforge.schemas.catalog import EventSchema, SchemaCatalog, default_catalog
from vtforge.schemas.codec import (
    BadMagicError,
    Codec,
    CodecError,
    SchemaViolationError,
    TruncatedPayloadError,
    UnknownSchemaError,
)
from vtforge.schemas.envelope import derived_span_id, derived_trace_id, event_id_for, new_event, stable_id

__all__ = [
    "BadMagicError",
    "Codec",
    "CodecError",
    "EventSchema",
    "SchemaCatalog",
    "SchemaViolationError",
    "TruncatedPayloadError",
    "UnknownSchemaError",
    "default_catalog",
    "derived_span_id",
    "derived_trace_id",
    "event_id_for",
    "new_event",
    "stable_id",
]
