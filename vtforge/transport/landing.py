"""The landing zone: Parquet files of events, one folder per event type and day.

Layout: ``<data>/landing/<event_type>/date=YYYY-MM-DD/<name>.parquet`` (Hive-style, so DuckDB
and Dagster can prune by date). Every file is written under a hidden temporary name, fsynced,
renamed into place and its folder fsynced: a reader never sees half a file, and a file that is
visible is durable. Both the embedded ``LandingSink`` and the Kafka ingestor write through
``write_events``; the ingestor passes deterministic names so a replay rewrites the same file.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vtforge.schemas.arrow import to_record_batch
from vtforge.schemas.batch import BatchDecoder
from vtforge.schemas.catalog import EventSchema
from vtforge.schemas.codec import Codec
from vtforge.transport.sink import EventSink, SinkError

TMP_SUFFIX = ".inprogress"


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file written through the handle appears at ``path`` whole (fsynced) or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_parquet_atomic(table: pa.Table, path: Path, *, compression: str = "zstd") -> Path:
    """Write ``table`` to ``path`` so that it appears whole or not at all."""
    with atomic_file(path) as handle:
        pq.write_table(table, handle, compression="NONE" if compression == "none" else compression)
    return path


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def event_dir(root: Path, event_type: str, day: str) -> Path:
    return root / event_type / f"date={day}"


def write_events(
    root: Path,
    schema: EventSchema,
    events: list[dict[str, Any]],
    name: str,
    *,
    compression: str = "zstd",
) -> list[Path]:
    """Write decoded events of one type, one file per day, each named ``<name>.parquet``."""
    table = pa.Table.from_batches([to_record_batch(events, schema.arrow_schema)])
    return write_table(root, schema, table, name, compression=compression)


def write_table(
    root: Path, schema: EventSchema, table: pa.Table, name: str, *, compression: str = "zstd"
) -> list[Path]:
    """Write a table of one event type, one file per day (of ``envelope.occurred_at``)."""
    if table.num_rows == 0:
        return []
    occurred = pc.struct_field(table["envelope"], "occurred_at")
    bounds = pc.min_max(occurred.cast(pa.int64()))  # microseconds; a timestamp's as_py imports pandas
    if _day(bounds["min"]) == _day(bounds["max"]):  # the usual case: no per-row day needed
        path = event_dir(root, schema.event_type, _day(bounds["min"])) / f"{name}.parquet"
        return [write_parquet_atomic(table, path, compression=compression)]
    days = pc.strftime(occurred, format="%Y-%m-%d")
    written = []
    for day in sorted(pc.unique(days).to_pylist()):
        path = event_dir(root, schema.event_type, day) / f"{name}.parquet"
        rows = table.filter(pc.equal(days, day))
        written.append(write_parquet_atomic(rows, path, compression=compression))
    return written


def _day(micros: pa.Scalar) -> str:
    return datetime.fromtimestamp(micros.as_py() / 1e6, UTC).strftime("%Y-%m-%d")


def sweep_stale_tmp(root: Path, older_than_s: float = 3600.0) -> int:
    """Remove temporary files left by writers that died mid-write (never visible to readers)."""
    cutoff = time.time() - older_than_s
    removed = 0
    for tmp in root.rglob(f"*{TMP_SUFFIX}"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


class LandingSink(EventSink):
    """The embedded default sink: batches events into landing Parquet files.

    Events are validated and Avro-encoded on ``emit`` (so the landing sink and the Kafka ingestor
    decode the very same bytes into the very same Arrow rows), buffered per event type, and written
    when a buffer reaches ``max_events`` or ``max_bytes``, when the oldest buffered event is
    ``interval_s`` old (a background timer), on ``flush()`` and on ``close()``.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_events: int = 5000,
        max_bytes: int = 16 * 1024 * 1024,
        interval_s: float = 5.0,
        compression: str = "zstd",
        producer: str = "vtforge",
        codec: Codec | None = None,
    ) -> None:
        self.root = Path(root)
        # a writer that died mid-write left a hidden temporary file; nobody else will remove it
        self.swept_on_start = sweep_stale_tmp(self.root) if self.root.is_dir() else 0
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.interval_s = interval_s
        self.compression = compression
        self.codec = codec or Codec()
        self._decoder = BatchDecoder(self.codec)
        self._tag = f"{_safe(producer)}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._seq = 0
        self._lock = threading.RLock()
        self._buffers: dict[str, list[bytes]] = defaultdict(list)
        self._sizes: dict[str, int] = defaultdict(int)
        self._oldest: dict[str, float] = {}
        self._failure: BaseException | None = None
        self._closed = False
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, name="landing-flush", daemon=True)
        self._timer.start()
        self.files_written: list[Path] = []

    def emit(self, event: dict[str, Any]) -> None:
        payload = self.codec.encode(event)  # raises SchemaViolationError naming the field
        event_type = event["envelope"]["event_type"]
        with self._lock:
            self._raise_pending()
            if self._closed:
                raise SinkError("emit on a closed LandingSink")
            self._buffers[event_type].append(payload)
            self._sizes[event_type] += len(payload)
            self._oldest.setdefault(event_type, time.monotonic())
            if len(self._buffers[event_type]) >= self.max_events or self._sizes[event_type] >= self.max_bytes:
                self._flush_type(event_type)

    def flush(self) -> int:
        with self._lock:
            self._raise_pending()
            return sum(self._flush_type(t) for t in list(self._buffers))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._timer.join(timeout=5)
        with self._lock:
            self._raise_pending()
            for event_type in list(self._buffers):
                self._flush_type(event_type)

    # --- internals -----------------------------------------------------------------------------
    def _flush_type(self, event_type: str) -> int:
        payloads = self._buffers.pop(event_type, [])
        self._sizes.pop(event_type, None)
        self._oldest.pop(event_type, None)
        if not payloads:
            return 0
        try:
            decoded = self._decoder.decode(payloads, expected=event_type)
            if decoded.rejected:  # we encoded these bytes ourselves: a bug, not bad input
                raise decoded.rejected[0][1]
            schema = self.codec.catalog.current(event_type)
            self._seq += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            name = f"part-{stamp}-{self._tag}-{self._seq:06d}"
            table = decoded.tables[event_type]
            self.files_written.extend(
                write_table(self.root, schema, table, name, compression=self.compression)
            )
        except BaseException as exc:
            # keep the events: a later flush retries them, and the caller hears about it now
            self._buffers[event_type][:0] = payloads
            self._sizes[event_type] += sum(len(p) for p in payloads)
            self._oldest.setdefault(event_type, time.monotonic())
            raise SinkError(f"could not write {len(payloads)} {event_type} events: {exc}") from exc
        return len(payloads)

    def _tick(self) -> None:
        while not self._stop.wait(min(self.interval_s, 1.0) / 2):
            now = time.monotonic()
            with self._lock:
                due = [t for t, since in self._oldest.items() if now - since >= self.interval_s]
                for event_type in due:
                    try:
                        self._flush_type(event_type)
                    except SinkError as exc:
                        self._failure = exc

    def _raise_pending(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise SinkError(str(failure)) from failure


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:40]


def landing_files(root: Path, event_types: Iterable[str] | None = None) -> list[Path]:
    """Every visible landing file (temporary files are never listed)."""
    if not root.exists():
        return []
    folders = [root / t for t in event_types] if event_types is not None else [root]
    return sorted(p for folder in folders if folder.exists() for p in folder.rglob("*.parquet"))
