"""Reading what VT Code writes: one JSON record per line, in three shapes.

* ``events.jsonl`` of a session: ``{"schema_version": "0.16.0", "event": {"type": …}}``.
* ``vtcode exec --json`` on stdout: the same events without the wrapper (Codex-compatible).
* ``.vtcode/logs/trajectory*.jsonl``: records with a ``kind`` (``tool``, ``route``, metrics …).

Parsing never guesses: a line that is not a JSON object, or has neither ``event``/``type`` nor
``kind``, is a ``FormatError`` (the tailer quarantines it). Anything that *is* a well-formed
record is kept, whatever its type or schema version.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

# The newest events.jsonl schema the mapping was checked against: vtcode 0.169.2 writes 0.16.0
# (tests/vtcode/recordings/); it was first written against vtcode-exec-events 0.11.x.
KNOWN_SCHEMA = (0, 16)
_VERSION_RE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?")


class FormatError(ValueError):
    """A line that is not a record VT Code writes; the message says why."""


@dataclass(frozen=True)
class ThreadRecord:
    """One thread event, unwrapped, with where it came from."""

    event: dict[str, Any]
    schema_version: str | None  # None for exec's unwrapped stream
    raw: str  # the line as read (kept verbatim in agent_step.raw)
    content_hash: str  # of the canonical inner event: the same for wrapped and unwrapped lines

    @property
    def type(self) -> str:
        return str(self.event.get("type", ""))


@dataclass(frozen=True)
class TrajectoryRecord:
    record: dict[str, Any]
    raw: str
    content_hash: str

    @property
    def kind(self) -> str:
        return str(self.record.get("kind", ""))


def canonical_hash(value: Any) -> str:
    """Content hash of a JSON value, independent of key order and whitespace."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _load_object(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise FormatError(f"a JSON {type(value).__name__}, not an object")
    return value


def parse_thread_line(line: str) -> ThreadRecord:
    """A wrapped (``events.jsonl``) or unwrapped (``exec --json``) thread event."""
    value = _load_object(line)
    if isinstance(value.get("event"), dict):
        event = value["event"]
        version = value.get("schema_version")
        version = None if version is None else str(version)
    elif "type" in value:
        event, version = value, None
    else:
        raise FormatError("neither a wrapped event ({schema_version, event}) nor an event with a type")
    if not isinstance(event.get("type"), str):
        raise FormatError("event has no string 'type'")
    return ThreadRecord(event, version, line, canonical_hash(event))


def parse_trajectory_line(line: str) -> TrajectoryRecord:
    value = _load_object(line)
    if not isinstance(value.get("kind"), str):
        raise FormatError("trajectory record has no string 'kind'")
    return TrajectoryRecord(value, line, canonical_hash(value))


def schema_tuple(version: str | None) -> tuple[int, int] | None:
    if not version:
        return None
    match = _VERSION_RE.match(version)
    if match is None:
        return None
    return int(match[1]), int(match[2] or 0)


def is_newer_schema(version: str | None) -> bool:
    """True when a record says it was written by a newer schema than the mapping knows."""
    parsed = schema_tuple(version)
    return parsed is not None and parsed > KNOWN_SCHEMA


def as_json_text(value: Any) -> str | None:
    """JSON text of a tool argument/response (strings stay as they are)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


_TURN_RE = re.compile(r"^\s*(?:[A-Za-z]+[-_ ]?)?(\d+)\s*$")


def trailing_int(value: Any, default: int = 0) -> int:
    """``turn-7`` → 7, ``3`` → 3; anything else → ``default``. vtcode 0.169's turn ids are
    UUIDs, whose last hex digits are not a turn number."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _TURN_RE.match(value)
        if match:
            return int(match[1])
    return default
