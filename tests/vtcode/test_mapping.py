"""The mapping: a session → one rollout (turn-by-turn snapshots) and its agent steps.

The stream goes through ``StreamImporter`` (parse + ``SessionMapper``) into a sink that only keeps
the events (encoded by the codec, so each is still checked against its schema); the tests assert on
those event dicts. One test goes end to end (landing files, quarantine, DuckDB); the CLI and tailer
tests cover the rest of that path.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from tests.vtcode.conftest import steps
from tests.vtcode.vtcode_files import sample_turns, unwrapped, wrap
from vtforge.config import Config
from vtforge.schemas.codec import Codec
from vtforge.transport.sink import EventSink
from vtforge.vtcode.mapping import MappingContext, hook_step, notify_step, rollout_id_for
from vtforge.vtcode.stream import StreamImporter, StreamResult

CONTEXT = MappingContext(model="gpt-5.4", temperature=0.7, source="stream")
Event = dict[str, Any]


class _Kept(EventSink):
    """Keeps what is emitted; encodes each event as the landing sink does (a schema violation raises)."""

    def __init__(self) -> None:
        self.codec = Codec()
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.codec.encode(event)
        self.events.append(event)

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _map(lines: list[str], session_id: str | None = None) -> tuple[StreamResult, list[Event]]:
    sink = _Kept()
    result = StreamImporter(sink, context=CONTEXT, session_id=session_id).feed(lines)
    return result, sink.events


def _unique(events: list[Event], event_type: str) -> list[Event]:
    """One event per id (the first), as the landing queries count them."""
    by_id: dict[str, Event] = {}
    for event in events:
        if event["envelope"]["event_type"] == event_type:
            by_id.setdefault(event["envelope"]["event_id"], event)
    return list(by_id.values())


def _steps(events: list[Event], kind: str | None = None) -> list[Event]:
    """The agent steps in session order (what ``tests.vtcode.conftest.steps`` reads back)."""
    rows = sorted(
        _unique(events, "agent_step"), key=lambda e: (e["envelope"]["session_id"], e["turn"], e["step_index"])
    )
    return [r for r in rows if kind is None or r["kind"] == kind]


def _rollouts(events: list[Event]) -> list[Event]:
    """The rollout snapshots by turns, the final one last."""
    return sorted(
        _unique(events, "rollout"), key=lambda e: (e["num_turns"], e["envelope"]["attributes"]["final"])
    )


def _unknown_records(events: list[Event]) -> list[tuple[str, str, int, int]]:
    """(type, schema_version, records, sessions) of the steps kept as kind 'other'."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for step in _steps(events, "other"):
        groups[(step["tool_name"], step["source_schema_version"] or "")].append(step["rollout_id"])
    return [(name, version, len(ids), len(set(ids))) for (name, version), ids in groups.items()]


def _all_lines(wrapper=wrap) -> list[str]:
    return [wrapper(e) for turn in sample_turns() for e in turn]


def test_session_maps_to_one_agent_rollout() -> None:
    result, events = _map(_all_lines())
    assert result.session_id == "thread-1"
    rows = _rollouts(events)
    # a snapshot at thread start and after each of the three turns, the last one final
    assert [r["num_turns"] for r in rows] == [0, 1, 2, 3, 3]
    final = rows[-1]
    assert final["rollout_id"] == rollout_id_for("thread-1")
    assert (final["role"], final["envelope"]["stage"], final["model"], final["temperature"]) == (
        "agent",
        "agentic",
        "gpt-5.4",
        0.7,
    )
    assert (
        final["prompt_tokens"],
        final["completion_tokens"],
        final["cached_prompt_tokens"],
        final["outcome"],
        final["stop_reason"],
    ) == (6600, 420, 3500, "resolved", "end_turn")
    final_flags = [r["envelope"]["attributes"]["final"] for r in rows]
    assert final_flags[-1] == "true" and all(flag == "false" for flag in final_flags[:-1])
    assert len(final["messages"]) >= 6  # assistant messages, tool calls and outputs, the command
    assert "subtracts" in final["reasoning"]
    # per-turn snapshots carry the running sums of the turns' usage
    assert [(r["prompt_tokens"], r["completion_tokens"], r["cached_prompt_tokens"]) for r in rows[1:4]] == [
        (1200, 90, 0),
        (3600, 300, 1100),
        (6600, 420, 3500),
    ]


def test_steps_carry_tools_commands_edits_and_test_outcomes() -> None:
    _, events = _map(_all_lines())
    by_tool = {(s["kind"], s["tool_name"]): s for s in _steps(events)}
    patch = by_tool[("tool_invocation", "apply_patch")]
    assert patch["files_changed"] == ["src/calc.py", "tests/test_calc.py"]
    assert (patch["lines_added"], patch["lines_removed"], patch["turn"]) == (5, 1, 2)
    command = by_tool[("command_execution", "command")]
    assert (command["exit_code"], command["status"]) == (1, "failed")
    assert json.loads(command["arguments"])["command"] == "pytest -q"
    assert "1 failed" in command["output"]
    passed = by_tool[("harness", "verification_passed")]
    assert (passed["status"], passed["exit_code"], passed["duration_ms"]) == ("passed", 0, 840.0)
    edit = by_tool[("tool_invocation", "edit_file")]
    assert (edit["files_changed"], edit["lines_added"], edit["lines_removed"]) == (["README.md"], 1, 2)
    replace = by_tool[("tool_invocation", "search_replace")]
    assert (replace["status"], replace["lines_added"]) == ("error", 2)
    change = by_tool[("file_change", None)]
    assert change["files_changed"] == ["src/calc.py", "tests/test_calc.py"]
    assert by_tool[("permission", "edit_file")]["status"] in ("requested", "allow")
    # streaming records are superseded by item.completed: one command step, not two
    assert len(_steps(events, "command_execution")) == 1


def test_unknown_types_and_newer_schema_are_kept_and_counted() -> None:
    result, events = _map(_all_lines())
    others = _steps(events, "other")
    assert {s["tool_name"] for s in others} == {"thread.compact_boundary", "turn.paused", "item.memory_note"}
    paused = next(s for s in others if s["tool_name"] == "turn.paused")
    assert paused["source_schema_version"] == "0.17.0"
    assert json.loads(paused["raw"])["event"]["resume_hint"] == {"after_s": 30}  # verbatim
    assert result.state.unknown_records == 3 and result.state.newer_schema_records == 1
    assert result.state.unknown_types == {
        "thread.compact_boundary": 1,
        "turn.paused": 1,
        "item.memory_note": 1,
    }
    table = {row[0]: row for row in _unknown_records(events)}
    assert table["turn.paused"][1:] == ("0.17.0", 1, 1)


def test_exec_stream_and_session_file_give_the_same_ids() -> None:
    """Unwrapped (exec --json) and wrapped (events.jsonl) lines of one session are the same events."""
    _, from_file = _map(_all_lines(wrap))
    _, from_exec = _map(_all_lines(unwrapped))
    assert {s["envelope"]["event_id"] for s in _steps(from_exec)} == {
        s["envelope"]["event_id"] for s in _steps(from_file)
    }
    rollouts = _rollouts(from_file + from_exec)
    assert {r["envelope"]["producer"] for r in rollouts} == {"vtforge.vtcode"}
    assert len({r["rollout_id"] for r in rollouts}) == 1


def test_bad_lines_are_quarantined_not_fatal(cfg: Config, sink: EventSink) -> None:
    """End to end, the one test here that is: the landing sink, the quarantine files, DuckDB."""
    import pyarrow.parquet as pq

    lines = _all_lines()
    lines.insert(3, "{not json")
    lines.insert(5, '["an", "array"]')
    importer = StreamImporter(sink, context=CONTEXT, quarantine_dir=cfg.quarantine_dir)
    result = importer.feed(lines)
    assert len(result.rejected) == 2
    rows = [
        r for p in (cfg.quarantine_dir / "vtcode").rglob("*.parquet") for r in pq.read_table(p).to_pylist()
    ]
    assert sorted(r["raw"] for r in rows) == [b'["an", "array"]', b"{not json"]
    assert len(steps(cfg)) == 17  # every good line still mapped


def test_hook_and_notify_payloads() -> None:
    post = {
        "session_id": "sess-9",
        "cwd": "/work/repo",
        "hook_event_name": "PostToolUse",
        "transcript_path": "/work/repo/.vtcode/sessions/sess-9/events.jsonl",
        "tool_name": "apply_patch",
        "tool_input": {"input": "*** Begin Patch\n*** Update File: a.py\n-x\n+y\n+z\n*** End Patch"},
        "tool_response": {"success": True, "exit_code": 0},
        "tool_call_id": "call_7",
    }
    event = hook_step(post)
    assert event["rollout_id"] == rollout_id_for("sess-9")
    assert (event["kind"], event["tool_name"], event["status"]) == ("hook", "apply_patch", "PostToolUse")
    assert (event["files_changed"], event["lines_added"], event["lines_removed"]) == (["a.py"], 2, 1)
    assert event["exit_code"] == 0
    assert hook_step(post)["envelope"]["event_id"] == event["envelope"]["event_id"]  # deterministic
    note = notify_step(
        {
            "type": "agent-turn-complete",
            "thread-id": "sess-9",
            "turn-id": "turn-4",
            "cwd": "/work/repo",
            "status": "success",
            "input-messages": ["fix add()"],
            "last-assistant-message": "Done.",
        }
    )
    assert (note["kind"], note["turn"], note["status"], note["output"]) == (
        "notification",
        4,
        "success",
        "Done.",
    )
    assert note["rollout_id"] == event["rollout_id"]


def test_known_type_from_a_newer_schema_is_mapped_and_flagged() -> None:
    from vtforge.vtcode.formats import parse_thread_line
    from vtforge.vtcode.mapping import SessionMapper, SessionState

    mapper = SessionMapper(SessionState(session_id="s-new"))
    line = json.dumps(
        {
            "schema_version": "0.17.2",
            "event": {
                "type": "item.completed",
                "item": {
                    "id": "m1",
                    "type": "agent_message",
                    "text": "hi",
                    "citations": [{"url": "https://example.org"}],
                },
            },
        }
    )
    (event,) = mapper.feed(parse_thread_line(line))
    assert (event["kind"], event["output"], event["source_schema_version"]) == (
        "agent_message",
        "hi",
        "0.17.2",
    )
    assert event["envelope"]["attributes"]["schema_newer"] == "true"
    assert json.loads(event["raw"])["event"]["item"]["citations"]  # the new field is kept verbatim
    assert mapper.state.newer_schema_records == 1 and mapper.state.unknown_records == 0


def test_a_session_is_one_trace_with_its_steps_under_its_rollout() -> None:
    """OpenTelemetry ids derived from the session: one trace, the rollout the root span (every
    snapshot the same span), each step a child; mapping the session again gives the same ids."""
    _, events = _map(_all_lines())
    _, again = _map(_all_lines(unwrapped))
    rollouts, steps = _rollouts(events), _steps(events)
    traces = {e["envelope"]["trace_id"] for e in [*rollouts, *steps]}
    assert len(traces) == 1 and len(traces.pop()) == 32
    assert {r["envelope"]["span_id"] for r in rollouts} == {rollouts[-1]["envelope"]["span_id"]}
    assert all(r["envelope"]["parent_span_id"] is None for r in rollouts)
    root = rollouts[-1]["envelope"]["span_id"]
    assert all(s["envelope"]["parent_span_id"] == root for s in steps)
    assert len({s["envelope"]["span_id"] for s in steps}) == len(steps)  # a span per step
    assert {s["envelope"]["span_id"] for s in _steps(again)} == {s["envelope"]["span_id"] for s in steps}
