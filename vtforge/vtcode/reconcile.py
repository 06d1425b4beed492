"""After ``vtcode exec``: land what the session file holds that the stdout stream did not.

vtcode 0.169 writes a session's ``events.jsonl`` only when an exec run ends, with the same
events it printed on stdout. Reading it through the tailer gives the same event ids for those
lines (ids come from the session, the position and the content), so the stream's ids are
skipped here and only what stdout lacked (a line lost in a pipe, a run cut short) is emitted.
The tailer's cursor is saved too, so a later ``vtforge vtcode tail`` does not read the file again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vtforge.transport.sink import EventSink
from vtforge.vtcode.tailer import SESSIONS_DIR, PollStats, WorkspaceTailer


class _Unseen(EventSink):
    """Passes on only events whose id is not already in ``seen``."""

    def __init__(self, sink: EventSink, seen: set[str]) -> None:
        self.sink = sink
        self.seen = seen
        self.skipped = 0
        self.passed = 0

    def emit(self, event: dict[str, Any]) -> None:
        if event["envelope"]["event_id"] in self.seen:
            self.skipped += 1
            return
        self.seen.add(event["envelope"]["event_id"])
        self.passed += 1
        self.sink.emit(event)

    def flush(self) -> int:
        return self.sink.flush()

    def close(self) -> None:  # the caller owns the sink
        return None


def reconcile_session(
    workspace: Path,
    session_id: str,
    sink: EventSink,
    *,
    seen: set[str],
    cursor_root: Path,
    quarantine_dir: Path | None = None,
    max_message_chars: int = 32_768,
) -> tuple[int, int, PollStats]:
    """(events added, events already streamed, the poll) for one session folder of ``workspace``."""
    if not (workspace / SESSIONS_DIR / session_id / "events.jsonl").is_file():
        return 0, 0, PollStats()
    unseen = _Unseen(sink, seen)
    tailer = WorkspaceTailer(
        workspace,
        unseen,
        cursor_root=cursor_root,
        quarantine_dir=quarantine_dir,
        max_message_chars=max_message_chars,
    )
    stats = tailer.poll(only_sessions={session_id})
    return unseen.passed, unseen.skipped, stats
