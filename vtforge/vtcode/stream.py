"""Ingest one thread-event stream: ``vtcode exec --json`` stdout, a saved file, or stdin.

The lines are the same events as ``events.jsonl`` (wrapped or not), so the same mapping applies
and ids match those the tailer would give the same session. The session id is the one given, or
the ``thread_id`` of the stream's ``thread.started``. The sink is flushed at every turn boundary
(each rollout snapshot), so a long ``exec`` run lands turn by turn.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
    ) -> None:
        self.sink = sink
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
        for event in events:
            self.sink.emit(event)
        self.result.events += len(events)
        if any(e["envelope"]["event_type"] == "rollout" for e in events):
            self.sink.flush()  # a turn boundary: make the turn visible now
        return len(events)

    def feed(self, lines: Iterable[str]) -> StreamResult:
        for line in lines:
            self.feed_line(line)
        return self.finish()

    def finish(self) -> StreamResult:
        self.sink.flush()
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


def run_exec(
    command: list[str], ingestor: StreamImporter, *, echo: IO[str] | None = None, cwd: Path | None = None
) -> int:
    """Run vtcode, ingest its stdout line by line as it comes; returns vtcode's exit status."""
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
    try:
        for line in process.stdout:
            if echo is not None:
                echo.write(line)
            ingestor.feed_line(line)
    except KeyboardInterrupt:
        process.terminate()
        raise
    finally:
        ingestor.finish()
    return process.wait()


def stdin_lines() -> Iterable[str]:
    yield from sys.stdin
