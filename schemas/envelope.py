"""Building events: the envelope every producer fills the same way.

An event is a plain dict shaped like its Avro record (``{"envelope": {...}, **payload}``): that is
what fastavro encodes fastest and what Arrow converts in one call. ``new_event`` fills the
envelope; a ``key`` (the natural key of the thing the event describes) makes ``event_id``
deterministic, so a retried emit is the same event and the warehouse can dedup it.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from vtforge.schemas.catalog import default_catalog

EVENT_NAMESPACE = uuid.UUID("6f0d7c1e-3b0a-5c8e-9a59-7674666f7267")  # fixed: ids stay stable


def event_id_for(event_type: str, key: str) -> str:
    """Deterministic event id for a natural key."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{event_type}\x1f{key}"))


def stable_id(*parts: object) -> str:
    """A short deterministic id (for rollouts, patches, tests…) from its defining parts."""
    return uuid.uuid5(EVENT_NAMESPACE, "\x1f".join(str(p) for p in parts)).hex[:16]


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def derived_trace_id(*scope: object) -> str:
    """A W3C/OpenTelemetry trace id (32 hex digits) fixed by ``scope`` (a self-play run, task and
    round; a vtcode session): re-emitted events land in the same trace."""
    return hashlib.sha256("\x1f".join(str(p) for p in scope).encode()).hexdigest()[:32]


def derived_span_id(trace_id: str, name: str) -> str:
    """The span id (16 hex digits) of ``name`` (``round``, ``rollout/<id>`` …) within ``trace_id``."""
    return hashlib.sha256(f"{trace_id}/{name}".encode()).hexdigest()[:16]


def new_event(
    event_type: str,
    payload: dict[str, Any],
    *,
    producer: str,
    stage: str = "selfplay",
    key: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    session_id: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    parent_span_id: str | None = None,
    occurred_at: datetime | None = None,
    synthetic: bool = False,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An event of ``event_type`` at its current schema version."""
    schema = default_catalog().current(event_type)
    envelope = {
        "event_id": event_id_for(event_type, key) if key is not None else str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": schema.version,
        "occurred_at": occurred_at or datetime.now(UTC),
        "producer": producer,
        "run_id": run_id,
        "session_id": session_id,
        "task_id": task_id,
        "stage": stage,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_span_id,
        "synthetic": synthetic,
        "attributes": attributes or {},
    }
    return {"envelope": envelope, **payload}
