"""Events from the landing zone as one file other tools take: Avro container, Parquet or JSON Lines.

The landing zone is Parquet partitioned by type and day, written for our own readers. Other
tools (avro-tools, Spark, pandas, jq) want one file: this writes it, one event type after
another, each in ``occurred_at`` order, each event once (the first copy of an ``event_id``, as
the warehouse keeps it). An Avro file of one type has that type's record schema, envelope
inlined; of several types, the union of their records (``avro-tools tojson`` tags each record
with its name). A Parquet file holds one type, since its columns are that type's fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from vtforge.schemas.catalog import EventSchema, SchemaCatalog, default_catalog
from vtforge.schemas.jsonform import to_jsonable
from vtforge.transport.landing import atomic_file, landing_files, write_parquet_atomic

FORMATS = ("avro", "parquet", "jsonl")
CODECS = ("null", "deflate", "snappy", "zstandard")
# deflate is one of the two codecs every Avro implementation must read; zstd is the landing's own
DEFAULT_CODEC = {"avro": "deflate", "parquet": "zstandard", "jsonl": "null"}
_PARQUET_COMPRESSION = {"null": "none", "deflate": "gzip", "snappy": "snappy", "zstandard": "zstd"}


# one event type's events, oldest first, each once: (schema, since) -> rows with the type's columns
EventSource = Callable[[EventSchema, "datetime | None"], pa.Table]


class ExportError(ValueError):
    """The export cannot be written as asked (the message says why and what to pass instead)."""


@dataclass
class Exported:
    """What an export wrote: the file and how many events of each type."""

    path: Path
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(self.counts.values())


def export_events(
    landing: Path,
    out: Path,
    fmt: str,
    *,
    codec: str | None = None,
    event_types: list[str] | None = None,
    since: datetime | None = None,
    catalog: SchemaCatalog | None = None,
    source: tuple[EventSource, list[str]] | None = None,
) -> Exported:
    """Write the landed events of ``event_types`` (all when None) to ``out`` in ``fmt``.

    ``source``: where the events come from instead of the landing files, and which types it has
    (the warehouse's raw views: ``vtforge events export --from warehouse``)."""
    catalog = catalog or default_catalog()
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    codec = codec or DEFAULT_CODEC[fmt]
    if codec not in CODECS:
        raise ExportError(f"--codec must be one of {', '.join(CODECS)}, got {codec!r}")
    if fmt == "jsonl" and codec != "null":
        raise ExportError("--codec applies to avro and parquet; jsonl is written uncompressed")
    unknown = sorted(set(event_types or []) - set(catalog.event_types))
    if unknown:
        raise ExportError(f"unknown event type {unknown[0]!r} (known: {', '.join(catalog.event_types)})")
    read, available = source or (lambda schema, since: _landed(landing, schema, since), None)
    present = [
        t
        for t in (event_types or catalog.event_types)
        if (t in available if available is not None else landing_files(landing, [t]))
    ]
    schemas = [catalog.current(t) for t in present]
    if not schemas:
        where = landing if source is None else "the warehouse"
        raise ExportError(f"no events of {', '.join(event_types or ['any type'])} in {where}")
    if fmt == "parquet" and len(schemas) > 1:
        raise ExportError(
            f"a Parquet file holds one event type, there are {len(schemas)} "
            f"({', '.join(present)}); pass --type T, or use --format avro or jsonl"
        )
    exported = Exported(out)
    tables = ((s, read(s, since)) for s in schemas)
    if fmt == "parquet":
        for schema, table in tables:
            exported.counts[schema.event_type] = table.num_rows
            write_parquet_atomic(table, out, compression=_PARQUET_COMPRESSION[codec])
        return exported
    with atomic_file(out) as handle:
        if fmt == "avro":
            records = _avro_records(tables, exported, tagged=len(schemas) > 1)
            fastavro.writer(handle, _file_schema(schemas), records, codec=codec)
        else:
            for record in _avro_records(tables, exported, tagged=False):
                handle.write(json.dumps(to_jsonable(record)).encode() + b"\n")
    return exported


def _landed(landing: Path, schema: EventSchema, since: datetime | None) -> pa.Table:
    """Every landed event of one type, oldest first, each ``event_id`` once."""
    tables = [pq.read_table(path) for path in landing_files(landing, [schema.event_type])]
    table = pa.concat_tables(tables, promote_options="permissive")  # older versions lack new fields
    envelope = table.column("envelope")
    children = dict(zip((f.name for f in envelope.type), envelope.flatten(), strict=True))
    keys = zip(children["occurred_at"].to_pylist(), children["event_id"].to_pylist(), strict=True)
    keep: dict[str, tuple[datetime, str, int]] = {}
    for row, (occurred, event_id) in enumerate(keys):
        if (since is None or occurred >= since) and event_id not in keep:
            keep[event_id] = (occurred, event_id, row)
    return table.take(pa.array([row for *_, row in sorted(keep.values())], pa.int64()))


def _file_schema(schemas: list[EventSchema]) -> Any:
    """One type: its record, envelope inlined. Several: their union, the envelope defined once
    (a named type may be defined only once in a schema, so later branches name it)."""
    if len(schemas) == 1:
        return schemas[0].expanded
    return [schemas[0].expanded, *(s.source for s in schemas[1:])]


def _avro_records(
    tables: Iterator[tuple[EventSchema, pa.Table]], exported: Exported, tagged: bool
) -> Iterator[Any]:
    """Rows as Avro records (maps as dicts); ``tagged`` names each union branch for fastavro."""
    for schema, table in tables:
        name = schema.parsed["name"]
        exported.counts[schema.event_type] = table.num_rows
        for batch in table.to_batches():
            for row in batch.to_pylist(maps_as_pydicts="strict"):
                yield (name, row) if tagged else row
