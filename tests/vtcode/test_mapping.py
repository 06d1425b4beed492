"""The mapping: a session → one rollout (turn-by-turn snapshots) and its agent steps."""

from __future__ import annotations

import json

from tests.vtcode.conftest import steps
from tests.vtcode.vtcode_files import sample_turns, unwrapped, wrap
from vtforge.config import Config
from vtforge.transport.sink import EventSink
from vtforge.vtcode.mapping import MappingContext, hook_step, notify_step, rollout_id_for
from vtforge.vtcode.queries import latest_rollouts, query, unknown_records
from vtforge.vtcode.stream import StreamImporter


def _ingest(cfg: Config, sink: EventSink, lines: list[str], session_id: str | None = None):
    ingestor = StreamImporter(
        sink,
        context=MappingContext(model="gpt-5.4", temperature=0.7, source="stream"),
        session_id=session_id,
        quarantine_dir=cfg.quarantine_dir,
    )
    return ingestor.feed(lines)


def _all_lines(wrapper=wrap) -> list[str]:
    return [wrapper(e) for turn in sample_turns() for e in turn]


def test_session_maps_to_one_agent_rollout(cfg: Config, sink: EventSink) -> None:
    result = _ingest(cfg, sink, _all_lines())
    assert result.session_id == "thread-1"
    rows = query(
        cfg.landing_dir,
        "rollout",
        "SELECT rollout_id, role, envelope.stage, model, temperature, num_turns, prompt_tokens, "
        "completion_tokens, cached_prompt_tokens, outcome, stop_reason, envelope.attributes['final'], "
        "len(messages), reasoning FROM {t} ORDER BY num_turns, envelope.attributes['final']",
    )
    # a snapshot at thread start and after each of the three turns, the last one final
    assert [r[5] for r in rows] == [0, 1, 2, 3, 3]
    final = rows[-1]
    assert final[0] == rollout_id_for("thread-1")
    assert final[1:5] == ("agent", "agentic", "gpt-5.4", 0.7)
    assert final[6:11] == (6600, 420, 3500, "resolved", "end_turn")
    assert final[11] == "true" and all(r[11] == "false" for r in rows[:-1])
    assert final[12] >= 6  # assistant messages, tool calls and outputs, the command
    assert "subtracts" in final[13]
    # per-turn snapshots carry the running sums of the turns' usage
    assert [(r[6], r[7], r[8]) for r in rows[1:4]] == [(1200, 90, 0), (3600, 300, 1100), (6600, 420, 3500)]


def test_steps_carry_tools_commands_edits_and_test_outcomes(cfg: Config, sink: EventSink) -> None:
    _ingest(cfg, sink, _all_lines())
    by_tool = {(s["kind"], s["tool_name"]): s for s in steps(cfg)}
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
    assert sum(1 for s in steps(cfg) if s["kind"] == "command_execution") == 1


def test_unknown_types_and_newer_schema_are_kept_and_counted(cfg: Config, sink: EventSink) -> None:
    result = _ingest(cfg, sink, _all_lines())
    others = steps(cfg, "kind = 'other'")
    assert {s["tool_name"] for s in others} == {"thread.compact_boundary", "turn.paused", "item.memory_note"}
    paused = next(s for s in others if s["tool_name"] == "turn.paused")
    assert paused["source_schema_version"] == "0.12.0"
    assert json.loads(paused["raw"])["event"]["resume_hint"] == {"after_s": 30}  # verbatim
    assert result.state.unknown_records == 3 and result.state.newer_schema_records == 1
    assert result.state.unknown_types == {
        "thread.compact_boundary": 1,
        "turn.paused": 1,
        "item.memory_note": 1,
    }
    table = {row[0]: row for row in unknown_records(cfg.landing_dir)}
    assert table["turn.paused"][1:] == ("0.12.0", 1, 1)


def test_exec_stream_and_session_file_give_the_same_ids(cfg: Config, sink: EventSink) -> None:
    """Unwrapped (exec --json) and wrapped (events.jsonl) lines of one session are the same events."""
    _ingest(cfg, sink, _all_lines(wrap))
    first = {s["event_id"] for s in steps(cfg)}
    _ingest(cfg, sink, _all_lines(unwrapped))
    assert {s["event_id"] for s in steps(cfg)} == first
    assert len(latest_rollouts(cfg.landing_dir)) == 1


def test_bad_lines_are_quarantined_not_fatal(cfg: Config, sink: EventSink) -> None:
    import pyarrow.parquet as pq

    lines = _all_lines()
    lines.insert(3, "{not json")
    lines.insert(5, '["an", "array"]')
    result = _ingest(cfg, sink, lines)
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
            "schema_version": "0.13.2",
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
        "0.13.2",
    )
    assert event["envelope"]["attributes"]["schema_newer"] == "true"
    assert json.loads(event["raw"])["event"]["item"]["citations"]  # the new field is kept verbatim
    assert mapper.state.newer_schema_records == 1 and mapper.state.unknown_records == 0
