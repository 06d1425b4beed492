"""Writing one partition's batch: decode, landing Parquet, quarantine — off the polling thread.

By default (``forge.events.kafka.ingest_workers = 0``) batches go to one writer thread of the
ingestor: the native decoder (``vtforge.schemas.batch``) and Parquet run without the GIL, so they overlap
with the Kafka client's fetch parsing at no copying cost. With N > 0, each batch's raw bytes go
to one of N worker processes instead (forked before the Kafka clients start; killed with their
parent via ``PR_SET_PDEATHSIG`` so one can never finish a write after the ingestor died and a
successor swept its files) — worth it only where decoding is Python-bound (no native module).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from vtforge.ingest import naming
from vtforge.schemas.batch import BatchDecoder
from vtforge.schemas.codec import Codec
from vtforge.schemas.registry import SchemaRegistryClient
from vtforge.transport.landing import write_table
from vtforge.transport.quarantine import Rejected, quarantine

QUARANTINE_SOURCE = "kafka"
_PR_SET_PDEATHSIG = 1
_local = threading.local()  # one decoder per writer thread: the native one is not shareable
native_decoding = True  # the benchmark turns it off to measure the fastavro-only path


@dataclass(frozen=True)
class BatchJob:
    landing: str
    quarantine_root: str
    compression: str
    topic: str
    partition: int
    first: int
    last: int
    offsets: list[int]  # in offset order (Kafka offsets may have gaps)
    values: list[bytes | None]  # the record values, aligned with ``offsets``
    event_type: str | None  # what the topic carries (a hint: each value still names its schema)
    registry_url: str | None  # the schema registry of Confluent-framed values, if one is configured
    sweep_from: int | None  # remove uncommitted files of this partition from here on, first

    @property
    def name(self) -> str:
        return str(naming.BatchName(self.topic, self.partition, self.first, self.last))


@dataclass(frozen=True)
class BatchResult:
    good: int
    files: int
    rejected: list[tuple[int, str, str]]  # (offset, reason, error)
    swept: int = 0


def write_batch(job: BatchJob) -> BatchResult:
    """Make the batch durable under its deterministic name; the caller commits afterwards."""
    decoder = _batch_decoder(job.registry_url)
    landing, quarantine_root = Path(job.landing), Path(job.quarantine_root)
    swept = 0
    if job.sweep_from is not None:
        swept = sweep_partition([landing, quarantine_root], job.topic, job.partition, job.sweep_from)
    decoded = decoder.decode(job.values, expected=job.event_type)
    files = 0
    for event_type, table in decoded.tables.items():
        schema = decoder.codec.catalog.current(event_type)
        files += len(write_table(landing, schema, table, job.name, compression=job.compression))
    bad = [(job.offsets[index], error, job.values[index]) for index, error in decoded.rejected]
    if bad:
        where = f"{job.topic}/{job.partition}@"
        rejected = [Rejected(f"{where}{offset}", exc.reason, str(exc), raw) for offset, exc, raw in bad]
        quarantine(quarantine_root, QUARANTINE_SOURCE, rejected, name=job.name)
        files += 1
    return BatchResult(decoded.good, files, [(offset, exc.reason, str(exc)) for offset, exc, _ in bad], swept)


def _batch_decoder(registry_url: str | None) -> BatchDecoder:
    """This thread's decoder for that registry (built once; the native one is not shareable)."""
    decoders: dict[tuple[bool, str | None], BatchDecoder] = _local.__dict__.setdefault("decoders", {})
    key = (native_decoding, registry_url)
    if key not in decoders:
        # decoding only looks schemas up by id, so the subject naming is never used
        registry = SchemaRegistryClient(registry_url, subject_for=str) if registry_url else None
        decoders[key] = BatchDecoder(Codec(registry=registry), native=native_decoding)
    return decoders[key]


def sweep_partition(roots: list[Path], topic: str, partition: int, from_offset: int) -> int:
    """Remove files of a partition whose first offset is ≥ ``from_offset`` (never committed)."""
    removed = 0
    for path in naming.files_of_partition(roots, topic, partition):
        batch = naming.parse(path.name.lstrip(".").split(".parquet")[0])
        if batch is not None and batch.first >= from_offset:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def worker_init() -> None:
    """Die with the parent; leave SIGINT/SIGTERM to the parent, which drains and commits."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def warm_up() -> bool:
    """Import what the first batch needs (pyarrow pulls in pandas lazily: seconds) ahead of time."""
    import pyarrow as pa

    with contextlib.suppress(ImportError):
        import pandas  # noqa: F401
    pa.array([{"a": 1}])
    return True
