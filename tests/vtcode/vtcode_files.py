"""Writes a workspace's ``.vtcode`` files the way VT Code 0.14x does (written from the formats in
issue 9; VT Code itself cannot run here: it needs a hosted model).

* ``SessionWriter``: ``sessions/<id>/events.jsonl`` (wrapped events, buffered and flushed per
  turn), ``manifest.json`` and ``index/turns.json``; ``evict_oldest_turns`` rewrites the file in
  place (same inode: truncate, then write what remains), as vtcode does past 10,000 events.
* ``TrajectoryWriter``: ``logs/trajectory.jsonl``, rotated to ``trajectory-<timestamp>.jsonl``.
* ``sample_turns``: a realistic three-turn session (reasoning, read_file, a failing pytest run,
  an ``apply_patch``, the file change, a harness verification that passes, the older
  ``edit_file``/``search_replace`` tools, a permission prompt, an event type and an item type
  the mapping does not know, a record from a newer schema version, and the thread's completion).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = "0.11.0"

PATCH = """*** Begin Patch
*** Update File: src/calc.py
@@ def add(a, b):
-    return a - b
+    return a + b
*** Add File: tests/test_calc.py
+from src.calc import add
+
+def test_add():
+    assert add(2, 3) == 5
*** End Patch
"""


def item(item_id: str, item_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": "item.completed", "item": {"id": item_id, "type": item_type, **fields}}


def usage(inp: int, cached: int, out: int, creation: int = 0) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "cache_creation_tokens": creation,
        "output_tokens": out,
    }


def sample_turns(thread_id: str = "thread-1") -> list[list[dict[str, Any] | tuple[str, dict[str, Any]]]]:
    """Three turns; each is a list of events (a ``(schema_version, event)`` pair overrides the version).

    The first turn starts with ``thread.started``; the last ends with ``thread.completed``.
    """
    turn1 = [
        {"type": "thread.started", "thread_id": thread_id},
        {"type": "turn.started"},
        item("i1", "reasoning", text="The add function subtracts; look at src/calc.py."),
        item(
            "i2",
            "tool_invocation",
            tool_name="read_file",
            arguments={"path": "src/calc.py"},
            tool_call_id="call_1",
            status="completed",
        ),
        item(
            "i3",
            "tool_output",
            call_id="i2",
            tool_call_id="call_1",
            output="def add(a, b):\n    return a - b\n",
            status="completed",
        ),
        item("i4", "agent_message", text="Found it: add() subtracts."),
        {"type": "turn.completed", "usage": usage(1200, 0, 90, creation=1100)},
    ]
    turn2 = [
        {"type": "turn.started"},
        {
            "type": "item.started",
            "item": {
                "id": "i5",
                "type": "command_execution",
                "command": "pytest -q",
                "aggregated_output": "",
                "status": "in_progress",
            },
        },
        item(
            "i5",
            "command_execution",
            command="pytest -q",
            arguments={"cwd": "."},
            aggregated_output="F\n1 failed in 0.01s\n",
            exit_code=1,
            status="failed",
        ),
        item(
            "i6",
            "tool_invocation",
            tool_name="apply_patch",
            arguments={"input": PATCH},
            tool_call_id="call_2",
            status="completed",
        ),
        item(
            "i7",
            "file_change",
            changes=[
                {"path": "src/calc.py", "kind": "update"},
                {"path": "tests/test_calc.py", "kind": "add"},
            ],
            status="completed",
        ),
        item("i8", "harness", event="verification_started", command="pytest -q"),
        item("i9", "harness", event="verification_passed", command="pytest -q", exit_code=0, duration_ms=840),
        {"type": "turn.completed", "usage": usage(2400, 1100, 210)},
    ]
    turn3 = [
        {"type": "turn.started"},
        {"type": "permission.requested", "tool_name": "edit_file"},
        {"type": "permission.resolved", "tool_name": "edit_file", "decision": "allow", "wait_ms": 1500},
        item(
            "i10",
            "tool_invocation",
            tool_name="edit_file",
            arguments={"path": "README.md", "old_str": "old line\nsecond", "new_str": "new line"},
            tool_call_id="call_3",
            status="completed",
        ),
        item(
            "i11",
            "tool_invocation",
            tool_name="search_replace",
            arguments={"file_path": "src/calc.py", "search": "a + b", "replace": "b + a\n# commutative"},
            tool_call_id="call_4",
            status="failed",
            outcome="error",
        ),
        {
            "type": "thread.compact_boundary",
            "thread_id": thread_id,
            "trigger": "auto",
            "mode": "local",
            "original_message_count": 12,
            "compacted_message_count": 5,
        },
        ("0.17.0", {"type": "turn.paused", "reason": "budget", "resume_hint": {"after_s": 30}}),
        item("i12", "memory_note", text="remember: calc is commutative"),
        item("i13", "agent_message", text="Fixed add() and added a test."),
        {"type": "turn.completed", "usage": usage(3000, 2400, 120)},
        {
            "type": "thread.completed",
            "thread_id": thread_id,
            "session_id": "s",
            "subtype": "success",
            "outcome_code": "success",
            "outcome": "resolved",
            "stop_reason": "end_turn",
            "usage": usage(6600, 3500, 420, creation=1100),
            "num_turns": 3,
        },
    ]
    return [turn1, turn2, turn3]


def wrap(entry: dict[str, Any] | tuple[str, dict[str, Any]], schema: str = SCHEMA) -> str:
    if isinstance(entry, tuple):
        schema, entry = entry
    return json.dumps({"schema_version": schema, "event": entry}, separators=(",", ":"))


def unwrapped(entry: dict[str, Any] | tuple[str, dict[str, Any]]) -> str:
    """How ``vtcode exec --json`` prints the same event on stdout."""
    return json.dumps(entry[1] if isinstance(entry, tuple) else entry, separators=(",", ":"))


class SessionWriter:
    """One session's directory, written like vtcode's session store."""

    def __init__(self, workspace: Path, session_id: str, *, created_at: datetime | None = None) -> None:
        self.dir = workspace / ".vtcode" / "sessions" / session_id
        (self.dir / "index").mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "events.jsonl"
        self.path.touch()
        self.session_id = session_id
        self.created_at = created_at or datetime.now(UTC)
        self.turn_entries: list[dict[str, Any]] = []
        self.turns = 0
        self.events = 0
        self._write_meta()

    def _write_meta(self) -> None:
        manifest = {
            "session_id": self.session_id,
            "schema_version": 1,
            "created_at": self.created_at.isoformat(),
            "updated_at": (self.created_at + timedelta(seconds=30 * self.turns)).isoformat(),
            "turn_count": self.turns,
            "event_count": self.events,
            "status": "active",
        }
        (self.dir / "manifest.json").write_text(json.dumps(manifest))
        (self.dir / "index" / "turns.json").write_text(json.dumps({"entries": self.turn_entries}))

    def write_turn(self, events: list[Any]) -> None:
        """Append one turn's events in one write and flush (vtcode flushes at turn boundaries)."""
        start = self.path.stat().st_size
        text = "".join(wrap(e) + "\n" for e in events)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        has_turn = any(isinstance(e, dict) and e.get("type") == "turn.started" for e in events)
        if has_turn:
            self.turns += 1
            # a turn's index entry starts at its turn.started line
            offset = start
            for e in events:
                line = wrap(e) + "\n"
                if isinstance(e, dict) and e.get("type") == "turn.started":
                    break
                offset += len(line.encode())
            self.turn_entries.append(
                {
                    "turn_number": self.turns,
                    "start_offset": offset,
                    "end_offset": self.path.stat().st_size,
                    "event_count": len(events),
                    "ts": datetime.now(UTC).isoformat(),
                }
            )
        self.events += len(events)
        self._write_meta()

    def write_partial(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)

    def evict_oldest_turns(self, count: int) -> None:
        """vtcode's cap: drop the oldest ``count`` turns by rewriting the file in place."""
        cut = self.turn_entries[count - 1]["end_offset"]
        with open(self.path, "r+b") as handle:
            handle.seek(cut)
            remaining = handle.read()
            handle.truncate(0)
            handle.seek(0)
            handle.write(remaining)
            handle.flush()
            os.fsync(handle.fileno())
        kept = self.turn_entries[count:]
        for entry in kept:
            entry["start_offset"] -= cut
            entry["end_offset"] -= cut
        self.turn_entries = kept
        self._write_meta()


class TrajectoryWriter:
    """``.vtcode/logs/trajectory.jsonl`` and its rotation when a new session starts."""

    def __init__(self, workspace: Path) -> None:
        self.dir = workspace / ".vtcode" / "logs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "trajectory.jsonl"

    def tool(self, turn: int, name: str, args: dict[str, Any], ok: bool, ts: int) -> None:
        self._append(
            {
                "kind": "tool",
                "turn": turn,
                "name": name,
                "args": args,
                "ok": ok,
                "agent_name": None,
                "is_subagent": False,
                "ts": ts,
            }
        )

    def route(self, turn: int, model: str, ts: int) -> None:
        self._append(
            {
                "kind": "route",
                "turn": turn,
                "selected_model": model,
                "class": "standard",
                "input_preview": "fix add()",
                "ts": ts,
            }
        )

    def metric(self, name: str, value: float, ts: int) -> None:
        self._append({"kind": name, "value": value, "ts": ts})

    def _append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def rotate(self, stamp: str) -> Path:
        rotated = self.dir / f"trajectory-{stamp}.jsonl"
        os.replace(self.path, rotated)
        return rotated
