"""Reading event files (JSON Lines or Avro container files), record by record, with verdicts.

Each record comes back either as a valid event (already checked against its schema by encoding
it) or as a ``Rejected`` naming the file, the line (or record number) and the field at fault.
One bad record never stops the rest of the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from vtforge.schemas.codec import Codec, CodecError
from vtforge.schemas.jsonform import from_jsonable
from vtforge.transport.quarantine import Rejected


@dataclass(frozen=True)
class Checked:
    """One record of an event file: ``event`` when valid, else ``rejected``."""

    location: str
    event: dict[str, Any] | None = None
    rejected: Rejected | None = None


def read_event_file(path: Path, codec: Codec | None = None) -> Iterator[Checked]:
    """Every record of ``path`` (``.avro`` = Avro object container file, else JSON Lines)."""
    codec = codec or Codec()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".avro":
        yield from _read_avro(path, codec)
    else:
        yield from _read_jsonl(path, codec)


def _read_jsonl(path: Path, codec: Codec) -> Iterator[Checked]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            location = f"{path}:{number}"
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield _reject(location, "not_json", f"{location}: not valid JSON ({exc})", raw)
                continue
            if not isinstance(obj, dict):
                yield _reject(location, "not_an_object", f"{location}: expected a JSON object", raw)
                continue
            yield _check(obj, location, codec, raw)


def _read_avro(path: Path, codec: Codec) -> Iterator[Checked]:
    with path.open("rb") as handle:
        try:
            reader = fastavro.reader(handle)
        except Exception as exc:
            yield _reject(f"{path}", "not_avro", f"{path}: not an Avro container file ({exc})", None)
            return
        for number, record in enumerate(reader, start=1):
            yield _check(record, f"{path}#{number}", codec, None)


def _check(obj: dict[str, Any], location: str, codec: Codec, raw: bytes | None) -> Checked:
    try:
        schema = codec.schema_of(obj)
        event = from_jsonable(obj, schema.parsed)
        codec.encode(event)
    except (CodecError, ValueError) as exc:
        reason = getattr(exc, "reason", "schema_violation")
        return _reject(location, reason, f"{location}: {exc}", raw or json.dumps(obj, default=str).encode())
    return Checked(location, event=event)


def _reject(location: str, reason: str, error: str, raw: bytes | None) -> Checked:
    return Checked(location, rejected=Rejected(location=location, reason=reason, error=error, raw=raw))
