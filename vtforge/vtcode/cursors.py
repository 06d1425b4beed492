"""Persisted read positions, one small JSON file per followed file.

``<data_dir>/vtcode/cursors/<workspace key>/<name>.json`` holds the byte offset of the first
unread byte, a *signature* of the last lines read (their total length and hash, used to notice
that the file was rewritten under us and to find our place again) and the mapping's state. A
cursor is written atomically (temporary file, fsync, rename) and only after the events read up
to it were acknowledged by the sink, so a crash repeats events (same ids) but never skips any.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtforge.locks import FileLock

SIGNATURE_LINES = 4  # how many trailing lines identify our place in a file


def workspace_key(workspace: Path) -> str:
    resolved = workspace.resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", resolved.name)[:40] or "root"
    return f"{slug}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:10]}"


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:16]


@dataclass
class Cursor:
    """Where we are in one file."""

    name: str
    path: str
    offset: int = 0
    tail_hashes: list[str] = field(default_factory=list)  # hashes of the last lines read (oldest first)
    tail_bytes: int = 0  # their total length in bytes, newline included
    state: dict[str, Any] = field(default_factory=dict)  # the mapping's state (SessionState …)
    pending_reset: list[int] = field(default_factory=list)  # [size] seen when our place was lost

    def remember(self, line_with_newline: bytes) -> None:
        """Record a line just consumed (ends at ``offset``)."""
        self.tail_hashes.append(line_hash(line_with_newline))
        self._lengths.append(len(line_with_newline))
        if len(self.tail_hashes) > SIGNATURE_LINES:
            self.tail_hashes.pop(0)
            self._lengths.pop(0)
        self.tail_bytes = sum(self._lengths)

    def __post_init__(self) -> None:
        self._lengths: list[int] = []

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "offset": self.offset,
            "tail_hashes": self.tail_hashes,
            "tail_lengths": self._lengths,
            "tail_bytes": self.tail_bytes,
            "state": self.state,
            "pending_reset": self.pending_reset,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cursor:
        cursor = cls(
            name=data["name"],
            path=data.get("path", ""),
            offset=int(data.get("offset", 0)),
            tail_hashes=list(data.get("tail_hashes", [])),
            tail_bytes=int(data.get("tail_bytes", 0)),
            state=dict(data.get("state", {})),
            pending_reset=list(data.get("pending_reset", [])),
        )
        cursor._lengths = list(data.get("tail_lengths", []))
        if len(cursor._lengths) != len(cursor.tail_hashes) or sum(cursor._lengths) != cursor.tail_bytes:
            # no usable signature: trust the offset alone
            cursor.tail_hashes, cursor._lengths, cursor.tail_bytes = [], [], 0
        return cursor


class CursorStore:
    """The cursors of one workspace; also holds the lock that keeps one tailer per workspace."""

    def __init__(self, root: Path, workspace: Path) -> None:
        self.dir = root / workspace_key(workspace)
        self._lock: FileLock | None = None

    def _path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        if safe != name:
            safe = f"{safe[:80]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
        return self.dir / f"{safe}.json"

    def load(self, name: str) -> Cursor | None:
        path = self._path(name)
        try:
            return Cursor.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            # a damaged cursor is set aside, not trusted: we start over (event ids dedup the rest)
            path.replace(path.with_suffix(".damaged"))
            return None

    def save(self, cursor: Cursor) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(cursor.name)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(cursor.to_dict(), handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def all(self) -> list[Cursor]:
        if not self.dir.exists():
            return []
        out = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                out.append(Cursor.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return out

    def lock(self) -> bool:
        """Take the workspace's tailer lock; False when another tailer holds it."""
        lock = FileLock(self.dir / ".lock")  # held for the tailer's lifetime
        if not lock.acquire(timeout_s=0):
            return False
        self._lock = lock
        return True

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
