"""Ingest one thread-event stream: ``vtcode exec --json`` stdout, a saved file, or stdin.

The lines are the same events as ``events.jsonl`` (wrapped or not), so the same mapping applies
and ids match those the tailer would give the same session. The session id is the one given, or
the ``thread_id`` of the stream's ``thread.started``. The sink is flushed at every turn boundary
(each rollout snapshot) and, within a turn, at most ``flush_every_s`` after a step arrived: vtcode
0.169's exec run is one long turn, so turn boundaries alone would show nothing until the end.
A run that ends without ``thread.completed`` (killed, crashed) gets a final snapshot saying so.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vtforge.transport.quarantine import Rejected, quarantine
from vtforge.transport.sink import EventSink
from vtforge.vtcode.formats import FormatError, ThreadRecord, parse_thread_line
from vtforge.vtcode.mapping import MappingContext, SessionMapper, SessionState


@dataclass
class StreamResult:
    lines: int = 0
    events: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    session_id: str | None = None
    state: SessionState | None = None


class StreamImporter:
    """Feeds lines of one session's stream through the mapping into a sink."""

    def __init__(
        self,
        sink: EventSink,
        *,
        context: MappingContext,
        session_id: str | None = None,
        quarantine_dir: Path | None = None,
        source_name: str = "stream",
        flush_every_s: float | None = None,
    ) -> None:
        self.sink = sink
        self.flush_every_s = flush_every_s
        self.emitted: set[str] = set()  # event ids, so the session file can be reconciled after
        self.pending = 0  # events emitted since the last flush
        self._last_flush = time.monotonic()
        self.context = context
        self.session_id = session_id
        self.quarantine_dir = quarantine_dir
        self.source_name = source_name
        self.mapper: SessionMapper | None = None
        self.result = StreamResult(session_id=session_id)

    def _mapper_for(self, record: ThreadRecord) -> SessionMapper:
        if self.mapper is None:
            session_id = self.session_id
            if session_id is None:
                thread = record.event.get("thread_id") if record.type == "thread.started" else None
                session_id = str(thread) if thread else f"stream-{record.content_hash[:16]}"
            self.mapper = SessionMapper(SessionState(session_id=session_id), self.context)
            self.result.session_id = session_id
            self.result.state = self.mapper.state
        return self.mapper

    def feed_line(self, line: str) -> int:
        """Map one line; returns how many events it produced."""
        self.result.lines += 1
        text = line.strip()
        if not text:
            return 0
        try:
            record = parse_thread_line(text)
        except FormatError as exc:
            location = f"{self.source_name}:{self.result.lines}"
            self.result.rejected.append(Rejected(location, "bad_record", str(exc), text.encode("utf-8")))
            return 0
        events = self._mapper_for(record).feed(record)
        self._emit(events)
        if any(e["envelope"]["event_type"] == "rollout" for e in events):
            self.flush()  # a turn boundary: make the turn visible now
        elif self.flush_every_s is not None and time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()
        return len(events)

    def _emit(self, events: list[dict]) -> None:
        for event in events:
            self.sink.emit(event)
            self.emitted.add(event["envelope"]["event_id"])
        self.result.events += len(events)
        self.pending += len(events)

    def flush(self) -> None:
        """Make what was emitted queryable now."""
        if self.pending:
            self.sink.flush()
        self.pending = 0
        self._last_flush = time.monotonic()

    def abandon(self, returncode: int) -> int:
        """vtcode exited without ``thread.completed``: a final snapshot with what its exit says
        (``truncated`` when a signal killed it, else ``failed``); 0 when the run had completed."""
        if self.mapper is None:
            return 0
        if returncode < 0:
            outcome, reason = "truncated", f"killed by signal {-returncode}"
        else:
            outcome, reason = ("failed" if returncode else "truncated"), f"exit {returncode}"
        events = self.mapper.abandon(outcome, reason)
        self._emit(events)
        return len(events)

    def feed(self, lines: Iterable[str]) -> StreamResult:
        for line in lines:
            self.feed_line(line)
        return self.finish()

    def finish(self, returncode: int | None = None) -> StreamResult:
        """Flush (and quarantine bad lines); with vtcode's exit status, close an unfinished run."""
        if returncode is not None:
            self.abandon(returncode)
        self.sink.flush()
        self.pending = 0
        if self.result.rejected and self.quarantine_dir is not None:
            quarantine(self.quarantine_dir, "vtcode", self.result.rejected)
        return self.result


def vtcode_command(binary: str, args: list[str]) -> list[str]:
    """``vtcode exec --json <args>`` from what the user typed after ``--``."""
    rest = list(args)
    if rest and rest[0] == "exec":
        rest = rest[1:]
    if "--json" not in rest:
        rest = ["--json", *rest]
    return [binary, "exec", *rest]


def exec_workspace(args: list[str], cwd: Path) -> Path:
    """Where the vtcode run keeps its sessions: ``--workspace PATH`` when given, else ``cwd``."""
    for i, arg in enumerate(args):
        if arg == "--workspace" and i + 1 < len(args):
            return (cwd / args[i + 1]).resolve()
        if arg.startswith("--workspace="):
            return (cwd / arg.split("=", 1)[1]).resolve()
    return cwd


def run_exec(
    command: list[str], ingestor: StreamImporter, *, echo: IO[str] | None = None, cwd: Path | None = None
) -> int:
    """Run vtcode, ingest its stdout line by line as it comes; returns vtcode's exit status.

    A reader thread hands lines over, so a step that arrives just before vtcode goes quiet (a long
    command) is still flushed ``flush_every_s`` later instead of waiting for the next line."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=None,  # vtcode's own progress stays on the terminal
        stdin=None,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
        cwd=cwd,
        env=os.environ.copy(),
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    wait = ingestor.flush_every_s if ingestor.flush_every_s is not None else 1.0
    code: int | None = None
    try:
        while True:
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                ingestor.flush()  # quiet: make what arrived queryable
                continue
            if line is None:
                break
            if echo is not None:
                echo.write(line)
                echo.flush()  # live: a pipe would otherwise hold the lines back
            ingestor.feed_line(line)
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        raise
    finally:
        ingestor.finish(code)
    return process.wait()  # already exited: its status again


def stdin_lines() -> Iterable[str]:
    yield from sys.stdin
