"""The schema catalog: every ``.avsc`` in ``schemas/avro``, by event type, version and fingerprint.

Files are named ``<event_type>.v<N>.avsc``; the highest N is the current (reader) version. Every
event schema embeds the shared ``vtforge.Envelope`` from ``envelope.avsc``. Old versions stay in
the catalog so that data written with them still decodes (Avro schema resolution).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
from fastavro.schema import expand_schema, fingerprint, to_parsing_canonical_form

AVRO_DIR = Path(__file__).with_name("avro")
ENVELOPE_FILE = "envelope.avsc"
_FILE_RE = re.compile(r"^(?P<event_type>[a-z][a-z0-9_]*)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True)
class EventSchema:
    """One version of one event type's schema."""

    event_type: str
    version: int
    source: dict[str, Any]  # the JSON as written (with the envelope referenced by name)
    parsed: Any  # fastavro's parsed schema (envelope expanded)
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian (8 bytes)
    path: Path
    expanded: dict[str, Any]  # self-contained JSON (envelope inlined), for other Avro readers

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        from vtforge.schemas.arrow import arrow_schema

        return arrow_schema(self.parsed, self)

    @property
    def name(self) -> str:
        return f"{self.event_type}.v{self.version}"


class UnknownEventType(KeyError):
    """An event type that has no schema in the catalog."""


class SchemaCatalog:
    """All event schemas, indexed for encoding (current version) and decoding (any version)."""

    def __init__(self, avro_dir: Path = AVRO_DIR) -> None:
        self.avro_dir = avro_dir
        envelope = json.loads((avro_dir / ENVELOPE_FILE).read_text())
        self._envelope_source = envelope
        self._versions: dict[str, dict[int, EventSchema]] = {}
        self._by_fingerprint: dict[bytes, EventSchema] = {}
        for path in sorted(avro_dir.glob("*.avsc")):
            match = _FILE_RE.match(path.name)
            if match is None:
                continue
            schema = self._load(path, match["event_type"], int(match["version"]))
            self._versions.setdefault(schema.event_type, {})[schema.version] = schema
            self._by_fingerprint[schema.fingerprint] = schema
        # the reader schema of each type, looked up once per event on the hot path
        self._current = {t: versions[max(versions)] for t, versions in self._versions.items()}

    def _load(self, path: Path, event_type: str, version: int) -> EventSchema:
        source = json.loads(path.read_text())
        return build_event_schema(source, event_type, version, self._envelope_source, path)

    @property
    def event_types(self) -> list[str]:
        return sorted(self._versions)

    def current(self, event_type: str) -> EventSchema:
        try:
            return self._current[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def version(self, event_type: str, version: int) -> EventSchema:
        try:
            return self._versions[event_type][version]
        except KeyError:
            raise UnknownEventType(f"{event_type}.v{version}") from None

    def versions(self, event_type: str) -> list[EventSchema]:
        return [self._versions[event_type][v] for v in sorted(self._versions[event_type])]

    def by_fingerprint(self, fp: bytes) -> EventSchema | None:
        return self._by_fingerprint.get(fp)

    def all(self) -> list[EventSchema]:
        return [s for t in self.event_types for s in self.versions(t)]


def build_event_schema(
    source: dict[str, Any], event_type: str, version: int, envelope: dict[str, Any], path: Path
) -> EventSchema:
    """Parse one event schema (with the shared envelope) and fingerprint it."""
    expanded = expand_schema([envelope, source])[1]  # inline the envelope: self-contained schema
    parsed = fastavro.parse_schema(expanded)
    canonical = to_parsing_canonical_form(parsed)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return EventSchema(event_type, version, source, parsed, fp, path, expanded)


def export_resolved(catalog: SchemaCatalog, folder: Path) -> list[Path]:
    """Write every event schema self-contained (``vtforge.Envelope`` inlined) as
    ``<type>.v<N>.avsc``: the files in ``avro/`` reference the envelope by name, which only
    a reader given both files resolves (avro-tools ``--schema-file`` takes one)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for schema in catalog.all():
        path = folder / f"{schema.name}.avsc"
        path.write_text(json.dumps(schema.expanded, indent=2) + "\n")
        written.append(path)
    return written


@cache
def default_catalog() -> SchemaCatalog:
    """The catalog shipped with vtforge (loaded once per process)."""
    return SchemaCatalog()
