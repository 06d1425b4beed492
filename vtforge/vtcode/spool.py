"""The local spool: where ``hook`` and ``notify`` put events the sink could not take in time.

One file per event, ``<data_dir>/vtcode/spool/<event_id>.avro``, holding the event's Avro
single-object encoding (the exact bytes a sink would carry, so nothing is lost in a JSON round
trip). Files are written under a hidden temporary name and renamed, so a reader never sees half
of one; the deterministic event id as the name makes a re-spooled event overwrite itself.
``drain`` hands every spooled event to a sink, flushes, and deletes only what was acknowledged;
the tailer drains on every poll and ``vtforge vtcode drain`` does it by hand.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vtforge.locks import FileLock
from vtforge.schemas import Codec, CodecError
from vtforge.transport.quarantine import Rejected, quarantine
from vtforge.transport.sink import EventSink

SUFFIX = ".avro"


class Spool:
    def __init__(self, root: Path, *, quarantine_dir: Path | None = None, codec: Codec | None = None) -> None:
        self.root = root
        self.quarantine_dir = quarantine_dir
        self.codec = codec or Codec()

    def put(self, events: Iterable[dict[str, Any]]) -> list[Path]:
        """Write events durably (encoding validates them first)."""
        self.root.mkdir(parents=True, exist_ok=True)
        written = []
        for event in events:
            payload = self.codec.encode(event)
            path = self.root / f"{event['envelope']['event_id']}{SUFFIX}"
            tmp = self.root / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            written.append(path)
        if written:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return written

    def pending(self) -> list[Path]:
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.glob(f"*{SUFFIX}") if not p.name.startswith("."))

    def drain(self, sink: EventSink, *, limit: int = 10_000, wait_s: float = 0.0) -> int:
        """Send spooled events to ``sink``; returns how many were acknowledged and removed.

        One drainer at a time: another waits up to ``wait_s`` for the lock (then takes what is
        left), or returns 0. A file that does not decode is quarantined (source ``vtcode-spool``)
        and removed rather than retried forever.
        """
        if not self.pending():
            return 0
        lock = FileLock(self.root / ".drain.lock")
        if not lock.acquire(timeout_s=wait_s):
            return 0
        try:
            files = self.pending()[:limit]
            sent: list[Path] = []
            bad: list[tuple[Path, Rejected]] = []
            for path in files:
                try:
                    payload = path.read_bytes()
                except FileNotFoundError:  # drained by someone else meanwhile
                    continue
                try:
                    event = self.codec.decode(payload)
                except CodecError as exc:
                    bad.append((path, Rejected(str(path), exc.reason, str(exc), payload)))
                    continue
                sink.emit(event)
                sent.append(path)
            sink.flush()  # the ack: only now may the files go
            for path in sent:
                path.unlink(missing_ok=True)
            if bad and self.quarantine_dir is not None:
                quarantine(self.quarantine_dir, "vtcode-spool", [r for _, r in bad])
                for path, _ in bad:
                    path.unlink(missing_ok=True)
            return len(sent)
        finally:
            lock.release()
