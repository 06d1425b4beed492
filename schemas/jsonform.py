"""Plain JSON form of events (for JSONL files, logs and the CLI), driven by the Avro schema.

Avro's own JSON encoding tags every union branch (``{"string": "x"}``), which nobody writes by
hand; this is the natural form instead: nulls are ``null``, timestamps are ISO-8601 strings (or
integer microseconds), everything else is what JSON already has.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

_TIMESTAMP_TYPES = {"timestamp-micros", "timestamp-millis"}


def to_jsonable(value: Any) -> Any:
    """An event (or part of one) with datetimes as ISO strings and bytes as hex."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def from_jsonable(value: Any, avro_type: Any, path: str = "") -> Any:
    """Turn timestamp strings back into datetimes wherever the schema says timestamp.

    Raises ``ValueError`` naming the field when a timestamp string does not parse.
    """
    if isinstance(avro_type, list):
        if value is None:
            return None
        for branch in avro_type:
            if branch != "null":
                return from_jsonable(value, branch, path)
        return value
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") in _TIMESTAMP_TYPES and isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"field {path or '<root>'}: {value!r} is not an ISO-8601 timestamp"
                ) from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        kind = avro_type.get("type")
        if kind == "record" and isinstance(value, dict):
            out = dict(value)
            for field in avro_type["fields"]:
                name = field["name"]
                if name in out:
                    out[name] = from_jsonable(out[name], field["type"], f"{path}.{name}" if path else name)
            return out
        if kind == "array" and isinstance(value, list):
            return [from_jsonable(v, avro_type["items"], f"{path}[{i}]") for i, v in enumerate(value)]
        if kind == "map" and isinstance(value, dict):
            return {k: from_jsonable(v, avro_type["values"], f"{path}.{k}") for k, v in value.items()}
    return value
