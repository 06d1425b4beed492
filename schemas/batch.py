"""Many payloads to Arrow tables at once: the decode step of ingestion.

Per-event decoding (fastavro into dicts, then ``RecordBatch.from_pylist``) costs ~30 µs for a
1 KB rollout on this project's machines; it was most of the ingestor's time. Here, framed Avro
payloads (single-object, or Confluent with the codec's schema registry) go to **arrow-avro**
(Apache Arrow's Rust Avro reader, wrapped by the optional ``vtforge_native`` module built from
``native/``, which also has every body read once by the Apache Avro reference reader to refuse
bytes arrow-avro would take leniently) and come back as Arrow columns, ~5.5 µs an event without
the GIL, with no Python object per event.

The codec stays the judge of what is wrong with a payload. The native path takes a group of
payloads only when every one of them decodes to exactly one record from exactly its own bytes;
otherwise (a bad payload anywhere in the group), and whenever the module is not installed, the
group is decoded one payload at a time by the codec, which rejects the bad ones with a typed
reason. Both paths produce the same table (tested).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from vtforge.schemas.arrow import to_record_batch
from vtforge.schemas.catalog import EventSchema
from vtforge.schemas.codec import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, Codec, CodecError

try:  # built by `make` from native/ (Rust); everything works without it, only slower
    import vtforge_native
except ImportError:  # pragma: no cover - depends on the machine
    vtforge_native = None

log = logging.getLogger(__name__)
_HEADER = len(SINGLE_OBJECT_MAGIC) + 8
_CONFLUENT_HEADER = len(CONFLUENT_MAGIC) + 4
SINGLE_OBJECT, CONFLUENT = "single_object", "confluent"  # the framings vtforge_native knows


def native_available() -> bool:
    return vtforge_native is not None


@dataclass
class DecodedBatch:
    """Good events as one table per event type (rows in input order), and the rejected ones."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejected: list[tuple[int, CodecError]] = field(default_factory=list)  # (input index, error)
    native_rows: int = 0  # how many rows the native path decoded (the rest went through fastavro)

    @property
    def good(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


class BatchDecoder:
    """Decode lists of payloads into Arrow tables in the current schema of each event type."""

    def __init__(self, codec: Codec | None = None, *, native: bool = True) -> None:
        self.codec = codec or Codec()
        self.native = native and vtforge_native is not None
        self._decoders: dict[tuple[str, str, frozenset[bytes]], Any] = {}

    def decode(self, payloads: Sequence[bytes | None], *, expected: str | None = None) -> DecodedBatch:
        """``expected``: the event type the payloads most likely all have (a Kafka topic's); when
        they do, the whole list goes to the native decoder without sorting by header first."""
        if (
            expected is not None
            and self.native
            and payloads
            and (payloads[0] or b"")[:2] == SINGLE_OBJECT_MAGIC
        ):
            table = self._native(expected, SINGLE_OBJECT, frozenset(), list(payloads))
            if table is not None:
                return DecodedBatch(tables={expected: table}, native_rows=table.num_rows)
        out = DecodedBatch()
        slow: dict[str, list[int]] = defaultdict(list)  # event type -> indices, codec only
        by_key: dict[tuple[str, bytes], list[int]] = defaultdict(list)  # (framing, writer key)
        confluent = self.codec.registry is not None
        for index, payload in enumerate(payloads):  # the hot loop: header bytes only
            if payload and payload[:2] == SINGLE_OBJECT_MAGIC:
                by_key[SINGLE_OBJECT, payload[2:_HEADER]].append(index)
            elif confluent and payload and payload[:1] == CONFLUENT_MAGIC:
                by_key[CONFLUENT, payload[1:_CONFLUENT_HEADER]].append(index)
            else:
                self._refuse_or_route(index, payload or b"", slow, out)
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)  # (event type, framing)
        keys: dict[tuple[str, str], set[bytes]] = defaultdict(set)
        for (framing, key), indices in by_key.items():
            writer = self._writer(framing, key, payloads[indices[0]] or b"")
            if writer is None:  # unknown key, or a payload shorter than its header
                for index in indices:
                    self._refuse_or_route(index, payloads[index] or b"", slow, out)
            elif not self.native:
                slow[writer.event_type].extend(indices)
            else:
                groups[writer.event_type, framing].extend(indices)
                keys[writer.event_type, framing].add(key)
        parts: dict[str, list[tuple[list[int], pa.Table]]] = defaultdict(list)
        for (event_type, framing), indices in groups.items():
            indices.sort()  # several writer versions of one type: keep the input order
            writers = frozenset(keys[event_type, framing])
            table = self._native(event_type, framing, writers, [payloads[i] for i in indices])
            if table is None:
                slow[event_type].extend(indices)
            else:
                parts[event_type].append((indices, table))
                out.native_rows += table.num_rows
        for event_type, indices in slow.items():
            parts[event_type].append(self._one_by_one(event_type, sorted(indices), payloads, out))
        for event_type, pieces in parts.items():
            out.tables[event_type] = _in_input_order(pieces)
        out.rejected.sort(key=lambda r: r[0])
        return out

    def _writer(self, framing: str, key: bytes, payload: bytes) -> EventSchema | None:
        """The writer schema a header key names (a registry id is looked up once per client)."""
        if framing == SINGLE_OBJECT:
            return self.codec.catalog.by_fingerprint(key) if len(key) == 8 else None
        try:  # an unreachable registry raises RegistryError: not bad data, the batch is retried
            writer, _ = self.codec.writer_schema(payload)
        except CodecError:
            return None
        return writer

    def _refuse_or_route(
        self, index: int, payload: bytes, slow: dict[str, list[int]], out: DecodedBatch
    ) -> None:
        """A payload the native path cannot take: the codec decodes it or says what is wrong."""
        try:
            writer, _ = self.codec.writer_schema(payload)
        except CodecError as exc:
            out.rejected.append((index, exc))
            return
        slow[writer.event_type].append(index)

    def _native(
        self, event_type: str, framing: str, keys: frozenset[bytes], payloads: list[bytes | None]
    ) -> pa.Table | None:
        schema = self.codec.catalog.current(event_type)
        cache_key = (event_type, framing, keys)
        decoder = self._decoders.get(cache_key)
        if decoder is None:
            if framing == SINGLE_OBJECT:  # every version in the catalog, by fingerprint
                writers = [(s.fingerprint, s.expanded) for s in self.codec.catalog.versions(event_type)]
            else:  # the registry ids this batch named
                assert self.codec.registry is not None
                resolve = self.codec.registry.schema_for
                writers = [(k, resolve(int.from_bytes(k, "big")).expanded) for k in sorted(keys)]
            decoder = self._decoders[cache_key] = vtforge_native.SingleObjectDecoder(
                json.dumps(schema.expanded), [(k, json.dumps(w)) for k, w in writers], framing
            )
        try:
            batches = [pa.record_batch(b) for b in decoder.decode(payloads)]
            table = pa.Table.from_batches(batches) if batches else None
            return table.cast(schema.arrow_schema) if table is not None else None
        except Exception as exc:  # a bad payload in the group: the codec sorts it out
            log.debug("native decode of %d %s payloads fell back (%s)", len(payloads), event_type, exc)
            return None

    def _one_by_one(
        self, event_type: str, indices: list[int], payloads: Sequence[bytes | None], out: DecodedBatch
    ) -> tuple[list[int], pa.Table]:
        schema = self.codec.catalog.current(event_type)
        good: list[int] = []
        events: list[dict[str, Any]] = []
        for index in indices:
            try:
                events.append(self.codec.decode(payloads[index] or b""))
                good.append(index)
            except CodecError as exc:
                out.rejected.append((index, exc))
        return good, pa.Table.from_batches([to_record_batch(events, schema.arrow_schema)])


def _in_input_order(pieces: list[tuple[list[int], pa.Table]]) -> pa.Table:
    if len(pieces) == 1:
        return pieces[0][1]
    indices = [i for idx, _ in pieces for i in idx]
    table = pa.concat_tables([t for _, t in pieces])
    order = sorted(range(len(indices)), key=indices.__getitem__)
    return table.take(pa.array(order, type=pa.int64()))
