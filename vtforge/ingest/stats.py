"""Throughput bookkeeping of one ingestor, shared through a small JSON file per group member.

Each running ingestor rewrites ``<data>/ingest/members/<member>.json`` every few seconds (atomic
rename): the partitions it owns, events and files written per partition, and its recent rate.
``vtforge ingest status`` joins these with the lag it reads from the brokers.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE_WINDOW_S = 30.0
STALE_AFTER_S = 30.0
KEEP_STOPPED_S = 86_400.0


@dataclass
class PartitionStats:
    events: int = 0
    rejected: int = 0
    files: int = 0
    committed: int | None = None
    window: deque[tuple[float, int]] = field(default_factory=deque)

    def record(self, events: int, rejected: int, files: int, committed: int, now: float) -> None:
        self.events += events
        self.rejected += rejected
        self.files += files
        self.committed = committed
        self.window.append((now, events + rejected))
        while self.window and now - self.window[0][0] > RATE_WINDOW_S:
            self.window.popleft()

    def rate(self, now: float, started: float) -> float:
        while self.window and now - self.window[0][0] > RATE_WINDOW_S:
            self.window.popleft()
        span = min(RATE_WINDOW_S, max(now - started, 1e-3))
        return sum(n for _, n in self.window) / span


class MemberStats:
    """Counters of one ingestor process, with the file that publishes them."""

    def __init__(self, folder: Path, member: str, group: str) -> None:
        self.folder = folder
        self.member = member
        self.group = group
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.partitions: dict[str, PartitionStats] = defaultdict(PartitionStats)
        self.owned: list[str] = []
        self._last_publish = 0.0

    @property
    def path(self) -> Path:
        return self.folder / f"{self.member}.json"

    def record(self, key: str, events: int, rejected: int, files: int, committed: int) -> None:
        self.partitions[key].record(events, rejected, files, committed, time.monotonic())

    def totals(self) -> dict[str, int]:
        return {
            "events": sum(p.events for p in self.partitions.values()),
            "rejected": sum(p.rejected for p in self.partitions.values()),
            "files": sum(p.files for p in self.partitions.values()),
        }

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "member": self.member,
            "group": self.group,
            "pid": os.getpid(),
            "started_at": self.started_wall,
            "updated_at": time.time(),
            "owned": sorted(self.owned),
            "totals": self.totals(),
            "partitions": {
                key: {
                    "events": p.events,
                    "rejected": p.rejected,
                    "files": p.files,
                    "committed": p.committed,
                    "events_per_s": round(p.rate(now, self.started), 1),
                }
                for key, p in sorted(self.partitions.items())
            },
        }

    def publish(self, *, force: bool = False, every_s: float = 2.0) -> None:
        now = time.monotonic()
        if not force and now - self._last_publish < every_s:
            return
        self._last_publish = now
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=1))
        os.replace(tmp, self.path)

    def retire(self) -> None:
        """Mark the member stopped (the file stays for ``ingest status`` and for tests)."""
        snap = self.snapshot()
        snap["stopped"] = True
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(snap, indent=1))
        os.replace(tmp, self.path)
        prune_members(self.folder)


def prune_members(folder: Path, older_than_s: float = KEEP_STOPPED_S) -> int:
    """Forget members that stopped (or went silent) more than a day ago."""
    removed = 0
    cutoff = time.time() - older_than_s
    for path in folder.glob("*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def read_members(folder: Path, group: str | None = None) -> list[dict[str, Any]]:
    """Every member file (live or not), newest first; ``live`` says whether it is fresh."""
    out = []
    if not folder.exists():
        return out
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if group is not None and data.get("group") != group:
            continue
        data["live"] = not data.get("stopped") and time.time() - data.get("updated_at", 0) < STALE_AFTER_S
        out.append(data)
    return sorted(out, key=lambda d: d.get("updated_at", 0), reverse=True)
