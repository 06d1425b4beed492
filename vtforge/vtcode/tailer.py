"""Follow a workspace's live VT Code output and emit it: ``vtforge vtcode tail``.

What is followed (by polling; nothing here needs inotify):

* every ``.vtcode/sessions/<id>/events.jsonl`` (new sessions are picked up as they appear);
* ``.vtcode/logs/trajectory.jsonl`` and its rotated ``trajectory-<timestamp>.jsonl`` siblings.

What it survives:

* **partial last lines** — only complete (newline-terminated) lines are read;
* **in-place rewrites** — vtcode rewrites ``events.jsonl`` in place when it passes 10,000
  events, dropping the oldest turns. Each cursor keeps a signature of the last lines it read;
  when the bytes before our offset no longer match, we search the file for that signature and
  carry on just after it (turn numbers carry on too). When the signature is gone (we were behind
  the cut), we wait one poll for the file to settle, then read it from the start, taking the turn
  numbering from vtcode's own ``index/turns.json``;
* **rotation** — trajectory files are identified by their first line, not their name, so a
  renamed file keeps its cursor and a fresh ``trajectory.jsonl`` gets a new one;
* **its own restarts** — cursors are persisted after the sink acknowledged the events read up to
  them; every event id is deterministic, so the worst case (a crash between the ack and the
  cursor write) repeats events the warehouse already deduplicates by id.
"""

from __future__ import annotations

import json
import os
import threading
import time
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from vtforge.transport.quarantine import Rejected, quarantine
from vtforge.transport.sink import EventSink, SinkError
from vtforge.vtcode.cursors import Cursor, CursorStore, line_hash
from vtforge.vtcode.formats import FormatError, parse_thread_line, parse_trajectory_line
from vtforge.vtcode.mapping import MappingContext, SessionMapper, SessionState, trajectory_step
from vtforge.vtcode.spool import Spool

SESSIONS_DIR = Path(".vtcode") / "sessions"
LOGS_DIR = Path(".vtcode") / "logs"
QUARANTINE_SOURCE = "vtcode"


@dataclass
class PollStats:
    """What one poll did."""

    files: int = 0
    lines: int = 0
    events: int = 0
    quarantined: int = 0
    realigned: int = 0
    restarted: int = 0
    drained: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: PollStats) -> None:
        for name in ("files", "lines", "events", "quarantined", "realigned", "restarted", "drained"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


def agent_settings(workspace: Path) -> tuple[str, float]:
    """The model and temperature VT Code runs with, from the workspace's ``[agent]`` table."""
    path = workspace / "vtcode.toml"
    try:
        agent = tomllib.loads(path.read_text(encoding="utf-8")).get("agent", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown", 0.0
    model = agent.get("default_model") or agent.get("model") or "unknown"
    temperature = agent.get("temperature", 0.0)
    return str(model), float(temperature) if isinstance(temperature, (int, float)) else 0.0


def read_manifest(session_dir: Path) -> dict[str, Any]:
    try:
        value = json.loads((session_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def complete_lines(data: bytes) -> list[bytes]:
    """The newline-terminated lines of ``data`` (each with its newline); a partial tail is left."""
    end = data.rfind(b"\n")
    if end < 0:
        return []
    return data[: end + 1].splitlines(keepends=True)


def _first_line(handle: BinaryIO) -> bytes | None:
    handle.seek(0)
    line = handle.readline()
    return line if line.endswith(b"\n") else None


class WorkspaceTailer:
    """Polls one workspace and emits what is new; ``poll()`` is one pass, ``run()`` loops."""

    def __init__(
        self,
        workspace: Path,
        sink: EventSink,
        *,
        cursor_root: Path,
        spool: Spool | None = None,
        quarantine_dir: Path | None = None,
        max_message_chars: int = 32_768,
    ) -> None:
        self.workspace = workspace.resolve()
        self.sink = sink
        self.cursors = CursorStore(cursor_root, self.workspace)
        self.spool = spool
        self.quarantine_dir = quarantine_dir
        model, temperature = agent_settings(self.workspace)
        self.context = MappingContext(
            model=model, temperature=temperature, source="tail", max_message_chars=max_message_chars
        )
        self._cursors: dict[str, Cursor] = {}
        self._mappers: dict[str, SessionMapper] = {}
        self._quiet: dict[str, tuple[int, int, int]] = {}  # files found unchanged at their cursor

    # --- the loop ----------------------------------------------------------------------------------
    def run(
        self,
        *,
        interval_s: float = 0.5,
        stop: threading.Event | None = None,
        max_polls: int | None = None,
        on_poll: Any = None,
    ) -> PollStats:
        """Poll until ``stop`` is set (or ``max_polls`` passes); holds the workspace's tailer lock."""
        if not self.cursors.lock():
            raise RuntimeError(f"another vtforge tailer is following {self.workspace}")
        total = PollStats()
        stop = stop or threading.Event()
        polls = 0
        try:
            while not stop.is_set():
                stats = self.poll()
                total.add(stats)
                polls += 1
                if on_poll is not None:
                    on_poll(stats)
                if max_polls is not None and polls >= max_polls:
                    break
                stop.wait(interval_s)
        finally:
            self.cursors.unlock()
        return total

    def poll(self, *, only_sessions: set[str] | None = None) -> PollStats:
        """Read everything new once, emit it, and persist cursors after the sink's ack
        (``only_sessions``: just those session folders, no trajectory log)."""
        stats = PollStats()
        if self.spool is not None and self.spool.pending():
            try:
                stats.drained = self.spool.drain(self.sink)
            except (SinkError, OSError) as exc:
                stats.errors.append(f"spool drain: {exc}")
        rejected: list[Rejected] = []
        dirty: list[str] = []
        sessions_root = self.workspace / SESSIONS_DIR
        session_dirs = (
            sorted(p for p in sessions_root.iterdir() if p.is_dir()) if sessions_root.is_dir() else []
        )
        if only_sessions is not None:
            session_dirs = [p for p in session_dirs if p.name in only_sessions]
        for session_dir in session_dirs:
            if (session_dir / "events.jsonl").is_file() and self._poll_session(session_dir, stats, rejected):
                dirty.append(f"session-{session_dir.name}")
        starts = self._session_starts(session_dirs)
        logs = self.workspace / LOGS_DIR
        if logs.is_dir() and only_sessions is None:
            for path in sorted(logs.glob("trajectory*.jsonl")):
                name = self._poll_trajectory(path, starts, stats, rejected)
                if name:
                    dirty.append(name)
        if not dirty and not rejected:
            return stats
        try:
            if stats.events:
                self.sink.flush()
            if rejected and self.quarantine_dir is not None:
                quarantine(self.quarantine_dir, QUARANTINE_SOURCE, rejected)
        except (SinkError, OSError) as exc:
            # nothing acknowledged: forget what we read so the next poll reads it again
            stats.errors.append(f"sink: {exc}")
            for name in dirty:
                self._cursors.pop(name, None)
                self._mappers.pop(name, None)
            return stats
        for name in dirty:
            cursor = self._cursors[name]
            mapper = self._mappers.get(name)
            if mapper is not None:
                cursor.state = mapper.state.to_dict()
            self.cursors.save(cursor)
        return stats

    # --- sessions ----------------------------------------------------------------------------------
    def _cursor(self, name: str, path: Path) -> Cursor:
        cursor = self._cursors.get(name)
        if cursor is None:
            cursor = self.cursors.load(name) or Cursor(name=name, path=str(path))
            self._cursors[name] = cursor
        cursor.path = str(path)
        return cursor

    def _mapper(self, name: str, session_id: str, cursor: Cursor, handle: BinaryIO) -> SessionMapper:
        mapper = self._mappers.get(name)
        if mapper is None:
            state = (
                SessionState.from_dict(cursor.state) if cursor.state else SessionState(session_id=session_id)
            )
            mapper = SessionMapper(state, self.context)
            if cursor.offset > 0:  # rebuild the messages held only in memory
                handle.seek(0)
                records = []
                for raw in complete_lines(handle.read(cursor.offset)):
                    try:
                        records.append(parse_thread_line(raw.decode("utf-8")))
                    except (FormatError, UnicodeDecodeError):
                        continue
                mapper.replay(records)
            self._mappers[name] = mapper
        return mapper

    def _poll_session(self, session_dir: Path, stats: PollStats, rejected: list[Rejected]) -> bool:
        """Read one session's new lines; True when its cursor moved."""
        path = session_dir / "events.jsonl"
        session_id = session_dir.name
        name = f"session-{session_id}"
        cursor = self._cursor(name, path)
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return False
        with handle:
            info = os.fstat(handle.fileno())
            size = info.st_size
            seen = (size, info.st_mtime_ns, info.st_ino)
            if size == cursor.offset and self._quiet.get(name) == seen:
                return False  # untouched since we last checked it: skip the signature read
            if size == cursor.offset and self._place_holds(handle, size, cursor):
                self._quiet[name] = seen
                return False
            self._quiet.pop(name, None)
            moved = False
            if not self._place_holds(handle, size, cursor):
                found = self._realign(handle, size, cursor)
                if found is None:
                    if cursor.pending_reset != [size]:
                        cursor.pending_reset = [size]  # let a rewrite in progress settle first
                        return False
                    self._restart(session_dir, cursor, name)
                    stats.restarted += 1
                else:
                    stats.realigned += 1
                moved = True
            cursor.pending_reset = []
            mapper = self._mapper(name, session_id, cursor, handle)
            manifest = read_manifest(session_dir)
            mapper.context = replace(
                self.context, created_at=manifest.get("created_at"), updated_at=manifest.get("updated_at")
            )
            handle.seek(cursor.offset)
            lines = complete_lines(handle.read(max(0, size - cursor.offset)))
        if lines:
            stats.files += 1
        for raw in lines:
            location = f"{path}@{cursor.offset}"
            cursor.offset += len(raw)
            cursor.remember(raw)
            stats.lines += 1
            moved = True
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                record = parse_thread_line(text)
            except FormatError as exc:
                rejected.append(Rejected(location, "bad_record", str(exc), raw))
                stats.quarantined += 1
                continue
            for event in mapper.feed(record):
                self.sink.emit(event)
                stats.events += 1
        return moved

    def _place_holds(self, handle: BinaryIO, size: int, cursor: Cursor) -> bool:
        """Do the bytes just before our offset still hold the lines we last read?"""
        if cursor.offset == 0:
            return True
        if size < cursor.offset:
            return False
        if not cursor.tail_hashes:
            return True
        handle.seek(cursor.offset - cursor.tail_bytes)
        chunk = handle.read(cursor.tail_bytes)
        return [line_hash(line) for line in chunk.splitlines(keepends=True)] == cursor.tail_hashes

    def _realign(self, handle: BinaryIO, size: int, cursor: Cursor) -> int | None:
        """Find the signature of our last lines in a rewritten file; move just past it."""
        if not cursor.tail_hashes:
            return None
        handle.seek(0)
        lines = complete_lines(handle.read(size))
        hashes = [line_hash(line) for line in lines]
        width = len(cursor.tail_hashes)
        ends = []
        position = 0
        for line in lines:
            position += len(line)
            ends.append(position)
        for i in range(len(hashes) - 1, width - 2, -1):
            if hashes[i - width + 1 : i + 1] == cursor.tail_hashes:
                cursor.offset = ends[i]
                return cursor.offset
        return None

    def _restart(self, session_dir: Path, cursor: Cursor, name: str) -> None:
        """Our place is gone: read the file again from its start, numbering turns as vtcode does."""
        mapper = self._mappers.pop(name, None)
        state = mapper.state if mapper else (SessionState.from_dict(cursor.state) if cursor.state else None)
        first_turn = _first_indexed_turn(session_dir)
        if state is not None:
            if first_turn is not None:
                state.turn = first_turn - 1
            state.line_in_turn = 0
            cursor.state = state.to_dict()
        cursor.offset = 0
        cursor.tail_hashes = []
        cursor.tail_bytes = 0
        cursor._lengths = []

    # --- the trajectory log ------------------------------------------------------------------------
    def _session_starts(self, session_dirs: list[Path]) -> list[tuple[datetime, str]]:
        starts = []
        for session_dir in session_dirs:
            created = _parse_time(read_manifest(session_dir).get("created_at"))
            if created is not None:
                starts.append((created, session_dir.name))
        return sorted(starts)

    def _poll_trajectory(
        self, path: Path, starts: list[tuple[datetime, str]], stats: PollStats, rejected: list[Rejected]
    ) -> str | None:
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return None
        with handle:
            first = _first_line(handle)
            if first is None:
                return None
            identity = line_hash(first)
            name = f"trajectory-{identity}"
            cursor = self._cursor(name, path)
            size = path.stat().st_size
            if size < cursor.offset:
                cursor.offset, cursor.state = 0, {}
            if size == cursor.offset:
                return None
            handle.seek(cursor.offset)
            lines = complete_lines(handle.read(size - cursor.offset))
        if not lines:
            return None
        stats.files += 1
        line_no = int(cursor.state.get("lines", 0))
        for raw in lines:
            location = f"{path}@{cursor.offset}"
            cursor.offset += len(raw)
            cursor.remember(raw)
            line_no += 1
            stats.lines += 1
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                record = parse_trajectory_line(text)
            except FormatError as exc:
                rejected.append(Rejected(location, "bad_record", str(exc), raw))
                stats.quarantined += 1
                continue
            ts = record.record.get("ts")
            session_id = _session_at(starts, ts) if isinstance(ts, (int, float)) else None
            self.sink.emit(
                trajectory_step(
                    record,
                    file_identity=identity,
                    line_no=line_no,
                    session_id=session_id,
                    source_name=path.name,
                )
            )
            stats.events += 1
        cursor.state["lines"] = line_no
        return name


def _session_at(starts: list[tuple[datetime, str]], ts: float) -> str | None:
    """The session that had most recently started at ``ts`` (the trajectory log names none)."""
    moment = datetime.fromtimestamp(ts, UTC)
    chosen = None
    for created, session_id in starts:
        if created <= moment:
            chosen = session_id
    return chosen


def _first_indexed_turn(session_dir: Path) -> int | None:
    """The first turn still in ``events.jsonl``, from vtcode's ``index/turns.json``."""
    try:
        index = json.loads((session_dir / "index" / "turns.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    entries = index.get("entries") if isinstance(index, dict) else index
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return None
    number = entries[0].get("turn_number")
    return number if isinstance(number, int) else None


def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes (for callers and tests)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
