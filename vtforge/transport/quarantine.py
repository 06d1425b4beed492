"""Quarantine: where bad input goes, with its reason, so nothing is dropped silently.

Every rejected record becomes one row in ``<data>/quarantine/<source>/date=YYYY-MM-DD/*.parquet``
(written atomically like landing files) holding the raw bytes, the typed reason, the one-line
error and where it came from (``file:line`` or ``topic/partition@offset``). The warehouse reads
them as the ``quarantine`` table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from vtforge.transport.landing import write_parquet_atomic

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("quarantined_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("location", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("raw", pa.binary(), nullable=True),
    ]
)


@dataclass(frozen=True)
class Rejected:
    """One bad record: where it was, why it was rejected, and its bytes."""

    location: str
    reason: str
    error: str
    raw: bytes | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def quarantine(root: Path, source: str, rejected: list[Rejected], *, name: str | None = None) -> Path | None:
    """Write a batch of rejected records; returns the file (None when there was nothing)."""
    if not rejected:
        return None
    table = pa.Table.from_pylist(
        [
            {
                "quarantined_at": r.at,
                "source": source,
                "location": r.location,
                "reason": r.reason,
                "error": r.error,
                "raw": r.raw,
            }
            for r in rejected
        ],
        schema=QUARANTINE_SCHEMA,
    )
    day = rejected[0].at.strftime("%Y-%m-%d")
    name = name or f"q-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    path = root / source / f"date={day}" / f"{name}.parquet"
    return write_parquet_atomic(table, path)
