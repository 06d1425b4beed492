"""Replays of the real vtcode 0.169.2 (tests/vtcode/recordings/, made by scripts/record_vtcode.py).

The expected values are read off the recorded files: exec's stdout has ``thread.started`` on
line 0 and ``turn.started`` on line 1, so a step's ``step_index`` is its line number − 1
(``item.started``/``item.updated`` lines count but land nothing); the TUI session's
``turn.started`` is line 3, after ``thread.started``, an ``interjected`` record and a harness
snapshot, so there it is line − 3 and the two records before the turn are turn 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.vtcode.conftest import make_tailer, raw_count, steps
from tests.vtcode.recordings import Recording, all_recordings
from tests.vtcode.test_mapping import CONTEXT, _Kept, _rollouts, _steps
from vtforge.config import Config
from vtforge.transport.sink import EventSink
from vtforge.vtcode.mapping import hook_step, notify_step, rollout_id_for
from vtforge.vtcode.queries import latest_rollouts
from vtforge.vtcode.reconcile import reconcile_session
from vtforge.vtcode.stream import StreamImporter

Event = dict[str, Any]
FIX = Recording("exec_fix")
LOOP = Recording("exec_loop")
ERROR = Recording("exec_error")
TRUNCATED = Recording("exec_truncated")
TUI = Recording("tui_hooks")
SMOL = Recording("exec_serve_smollm2")
PATCHED = (["calc.py"], 1, 1)
UNCHANGED: tuple[list[str], int, int] = ([], 0, 0)
LATENCY = "tool_latency_recorded"


def _stream(lines: list[str], returncode: int | None = None) -> tuple[StreamImporter, list[Event]]:
    sink = _Kept()
    importer = StreamImporter(sink, context=CONTEXT)
    importer.feed(lines)
    importer.finish(returncode)
    return importer, sink.events


def _table(rows: list[Event]) -> list[tuple[Any, ...]]:
    return [
        (
            r["turn"],
            r["step_index"],
            r["kind"],
            r["tool_name"],
            r["status"],
            (list(r["files_changed"]), r["lines_added"], r["lines_removed"]),
        )
        for r in rows
    ]


EXEC_FIX_STEPS = [
    (1, 4, "tool_invocation", "exec_command", "success", UNCHANGED),
    (1, 5, "tool_output", None, "completed", UNCHANGED),
    (1, 6, "harness", LATENCY, LATENCY, UNCHANGED),
    (1, 10, "tool_invocation", "apply_patch", "success", PATCHED),
    (1, 11, "tool_output", None, "completed", UNCHANGED),
    (1, 12, "harness", LATENCY, LATENCY, UNCHANGED),
    (1, 16, "tool_invocation", "exec_command", "success", UNCHANGED),
    (1, 17, "tool_output", None, "completed", UNCHANGED),
    (1, 18, "harness", LATENCY, LATENCY, UNCHANGED),
    (1, 20, "agent_message", None, None, UNCHANGED),  # the scripted final answer
    (1, 22, "agent_message", None, None, UNCHANGED),  # vtcode asked again: "Done."
    (1, 24, "agent_message", None, None, UNCHANGED),  # and again: "Done."
    (1, 25, "error", None, "error", UNCHANGED),  # "No tool calls or completion for 3 consecutive turns"
    (1, 26, "agent_message", None, None, UNCHANGED),  # vtcode's own run summary
]

TUI_STEPS = [
    (0, 2, "other", "interjected", "kept", UNCHANGED),
    (0, 3, "harness", "snapshot_created", "snapshot_created", UNCHANGED),
    (1, 4, "permission", "exec_command", "requested", UNCHANGED),
    (1, 5, "permission", "exec_command", "allow", UNCHANGED),
    (1, 10, "tool_invocation", "exec_command", "error", UNCHANGED),  # pytest exits 1
    (1, 11, "tool_output", None, "failed", UNCHANGED),
    (1, 12, "harness", LATENCY, LATENCY, UNCHANGED),
    (1, 13, "reasoning", None, "diagnosis", UNCHANGED),  # vtcode's diagnosis (stage "diagnosis")
    (1, 17, "permission", "apply_patch", "requested", UNCHANGED),
    (1, 18, "permission", "apply_patch", "allow", UNCHANGED),
    (1, 19, "tool_invocation", "apply_patch", "success", PATCHED),
    (1, 20, "tool_output", None, "completed", UNCHANGED),
    (1, 21, "harness", LATENCY, LATENCY, UNCHANGED),
    (1, 25, "permission", "exec_command", "requested", UNCHANGED),
    (1, 26, "permission", "exec_command", "allow", UNCHANGED),
    (1, 31, "tool_invocation", "exec_command", "success", UNCHANGED),
    (1, 32, "tool_output", None, "completed", UNCHANGED),
    (1, 33, "harness", LATENCY, LATENCY, UNCHANGED),
    (1, 35, "agent_message", None, None, UNCHANGED),
]


# --- what was recorded --------------------------------------------------------------------------


@pytest.mark.parametrize("recording", all_recordings(), ids=lambda r: r.name)
def test_recordings_are_described_small_and_hold_their_files(recording: Recording) -> None:
    meta = recording.meta
    assert meta["vtcode_version"] == "0.169.2" and meta["scenario"] == recording.name
    for name in meta["files"]:
        assert (recording.dir / name).is_file(), name
    total = sum(p.stat().st_size for p in recording.dir.rglob("*") if p.is_file())
    assert total < 128_000
    for line in recording.session_lines():
        assert json.loads(line)["schema_version"] == "0.16.0"
    assert "/tmp/" not in (recording.dir / "recording.json").read_text()


@pytest.mark.parametrize(
    "recording", [r for r in all_recordings() if (r.dir / "tools.json").is_file()], ids=lambda r: r.name
)
def test_vtcode_sends_flat_tool_definitions(recording: Recording) -> None:
    """Each tool is ``{"type": "function", "name", "description", "parameters"}`` plus a nested
    ``function`` copy: a server that allows no extra keys rejects the request."""
    tools = json.loads((recording.dir / "tools.json").read_text())
    assert tools and {t["type"] for t in tools} == {"function"}
    for tool in tools:
        assert tool["function"] == {k: tool[k] for k in ("name", "description", "parameters")}
    names = [t["name"] for t in tools]
    expected = ["exec_command", "code_search", "request_user_input"] if recording == TUI else None
    assert names == (expected or ["exec_command", "write_stdin", "apply_patch", "code_search"])


# --- exec: stdout as it streams -------------------------------------------------------------------


def test_exec_fix_stream_lands_exact_steps_and_outcome() -> None:
    importer, events = _stream(FIX.stdout_lines(), returncode=0)
    rows = _steps(events)
    assert _table(rows) == EXEC_FIX_STEPS
    assert len(rows) == len({r["envelope"]["event_id"] for r in rows})  # item_0 twice, one step each
    failed, patched, passed = (rows[i]["output"] for i in (1, 4, 7))
    assert "1 failed" in failed and "1 passed" in passed
    assert patched.startswith("diff preview for calc.py (updated) (+1 -1)")
    assert json.loads(rows[3]["arguments"])["input"].startswith("*** Begin Patch\n*** Update File: calc.py")
    assert [
        r["envelope"]["attributes"].get("tool_call_id") for r in rows if r["kind"] == "tool_invocation"
    ] == [
        "call_0_0",
        "call_1_0",
        "call_2_0",
    ]
    assert rows[2]["duration_ms"] == 1188.0
    snapshots = _rollouts(events)
    assert [r["num_turns"] for r in snapshots] == [0, 1, 6]  # start, turn.completed, thread.completed
    final = snapshots[-1]
    assert (final["outcome"], final["stop_reason"], final["prompt_tokens"], final["completion_tokens"]) == (
        "stopped_no_action",
        "end_turn",
        17686,
        57,
    )
    assert final["envelope"]["attributes"]["subtype"] == "success"
    assert final["envelope"]["attributes"]["final"] == "true"
    assert importer.result.state is not None and importer.result.state.newer_schema_records == 0


def test_exec_stdout_and_session_file_are_the_same_events() -> None:
    for recording in (FIX, LOOP, ERROR):
        _, streamed = _stream(recording.stdout_lines())
        _, filed = _stream(recording.session_lines())
        assert {e["envelope"]["event_id"] for e in streamed} == {e["envelope"]["event_id"] for e in filed}


def test_exec_loop_lands_every_blocked_repeat() -> None:
    _, events = _stream(LOOP.stdout_lines(), returncode=0)
    rows = _steps(events)
    calls = [r for r in rows if r["kind"] == "tool_invocation"]
    assert {r["tool_name"] for r in calls} == {"exec_command"} and len(calls) == 15
    assert [r["status"] for r in calls].count("success") == 6
    assert [r["status"] for r in calls].count("error") == 9
    errors = [r for r in rows if r["kind"] == "error"]
    assert len(errors) == 9 and all(
        e["output"].startswith("[Blocked by policy] Loop detection") for e in errors
    )
    assert len(rows) == 15 + 15 + 15 + 9 + 1  # calls, outputs, latencies, blocks, the summary
    final = _rollouts(events)[-1]
    assert (final["num_turns"], final["outcome"], final["stop_reason"]) == (16, "success", "tool_calls")


def test_exec_error_run_is_closed_as_failed_from_the_exit_status() -> None:
    """HTTP 500s: vtcode retried twice (thread.started + turn.started again), wrote no
    thread.completed and exited 1."""
    importer, events = _stream(ERROR.stdout_lines(), returncode=ERROR.meta["returncode"])
    assert _table(_steps(events)) == [
        (1, 4, "tool_invocation", "exec_command", "success", UNCHANGED),
        (1, 5, "tool_output", None, "completed", UNCHANGED),
        (1, 6, "harness", LATENCY, LATENCY, UNCHANGED),
    ]
    snapshots = sorted(
        (e for e in events if e["envelope"]["event_type"] == "rollout"),
        key=lambda e: e["envelope"]["occurred_at"],
    )
    assert [s["envelope"]["attributes"]["final"] for s in snapshots] == ["false"] * 3 + ["true"]
    assert (snapshots[-1]["outcome"], snapshots[-1]["stop_reason"]) == ("failed", "exit 1")
    assert importer.result.state is not None and importer.result.state.turn == 3


def test_truncated_run_lands_what_was_streamed_and_says_it_was_killed() -> None:
    assert TRUNCATED.session_file.stat().st_size == 0  # exec writes events.jsonl only at the end
    assert (TRUNCATED.dir / "events-export.jsonl").stat().st_size == 0  # --events: 8 KiB chunks
    _, events = _stream(TRUNCATED.stdout_lines(), returncode=TRUNCATED.meta["returncode"])
    assert _table(_steps(events)) == [
        (1, 4, "tool_invocation", "exec_command", "success", UNCHANGED),
        (1, 5, "tool_output", None, "completed", UNCHANGED),
        (1, 6, "harness", LATENCY, LATENCY, UNCHANGED),
        (1, 10, "tool_invocation", "apply_patch", "success", PATCHED),
    ]
    final = _rollouts(events)[-1]
    assert (final["outcome"], final["stop_reason"], final["envelope"]["attributes"]["abandoned"]) == (
        "truncated",
        "killed by signal 9",
        "true",
    )


def test_run_against_vtforge_serve_ends_blocked_by_loop_detection() -> None:
    """SmolLM2 answered three times with the same text and no tool call: vtcode wrote
    ``turn.blocked`` then ``turn.failed`` for that one turn, and outcome_code loop_detected."""
    _, events = _stream(SMOL.stdout_lines(), returncode=0)
    assert _table(_steps(events)) == [
        (1, 2, "agent_message", None, None, UNCHANGED),
        (1, 4, "agent_message", None, None, UNCHANGED),
        (1, 6, "agent_message", None, None, UNCHANGED),
        (1, 7, "agent_message", None, None, UNCHANGED),  # vtcode's summary
        (1, 8, "error", None, "turn_blocked", UNCHANGED),
        (1, 9, "harness", "turn_blocked", "turn_blocked", UNCHANGED),
        (1, 10, "harness", "blocked_handoff_written", "blocked_handoff_written", UNCHANGED),
        (1, 11, "harness", "blocked_handoff_written", "blocked_handoff_written", UNCHANGED),
        (1, 12, "error", None, "turn_failed", UNCHANGED),
    ]
    final = _rollouts(events)[-1]
    assert (final["num_turns"], final["outcome"], final["stop_reason"]) == (3, "loop_detected", "max_tokens")
    attributes = final["envelope"]["attributes"]
    assert (attributes["subtype"], attributes["turns_failed"], attributes["turns_blocked"]) == (
        "error_during_execution",
        "1",
        "1",
    )
    assert final["model"] == "gpt-5.4"  # CONTEXT's; the tail reads it from the workspace config
    _, filed = _stream(SMOL.session_lines())
    assert {e["envelope"]["event_id"] for e in filed} == {e["envelope"]["event_id"] for e in events}


# --- tail of the session folder, reconcile -------------------------------------------------------


def test_tail_of_the_tui_session_and_trajectory_lands_exact_steps(cfg: Config, sink: EventSink) -> None:
    TUI.copy_vtcode_dir(cfg.root)
    stats = make_tailer(cfg, sink).poll()
    assert not stats.errors and stats.quarantined == 0
    session = steps(cfg, f"envelope.session_id = '{TUI.session_id}' AND kind NOT LIKE 'trajectory_%'")
    assert _table(session) == TUI_STEPS
    by_index = {s["step_index"]: s for s in session}
    assert (by_index[11]["exit_code"], by_index[32]["exit_code"]) == (1, 0)
    assert all(s["source_schema_version"] == "0.16.0" for s in session)
    trajectory = steps(cfg, "kind LIKE 'trajectory_%'")
    assert len(trajectory) == 19
    assert {s["session"] for s in trajectory} == {TUI.session_id}  # attributed by time
    tools = [
        (s["tool_name"], s["status"], list(s["files_changed"]), s["lines_added"], s["lines_removed"])
        for s in trajectory
        if s["kind"] == "trajectory_tool"
    ]
    assert tools == [
        ("exec_command", "failed", [], 0, 0),
        ("apply_patch", "ok", ["calc.py"], 1, 1),
        ("exec_command", "ok", [], 0, 0),
    ]
    (rollout,) = latest_rollouts(cfg.landing_dir)
    assert (rollout[1], rollout[2], rollout[6], rollout[7]) == (TUI.session_id, 1, "exit", "true")
    assert raw_count(cfg, "agent_step") == (38, 38)


def test_tail_of_the_exec_session_folder(cfg: Config, sink: EventSink) -> None:
    FIX.copy_vtcode_dir(cfg.root)
    make_tailer(cfg, sink).poll()
    assert _table(steps(cfg)) == EXEC_FIX_STEPS
    (rollout,) = latest_rollouts(cfg.landing_dir)
    assert (rollout[2], rollout[3], rollout[4], rollout[6]) == (6, 17686, 57, "stopped_no_action")


def test_a_future_minor_schema_is_kept_not_dropped(cfg: Config, sink: EventSink) -> None:
    FIX.copy_vtcode_dir(cfg.root)
    path = cfg.root / FIX.session_file.relative_to(FIX.dir)
    path.write_text(path.read_text().replace('"schema_version":"0.16.0"', '"schema_version":"0.99.0"'))
    make_tailer(cfg, sink).poll()
    landed = steps(cfg)
    assert _table(landed) == EXEC_FIX_STEPS
    assert {s["source_schema_version"] for s in landed} == {"0.99.0"}
    from vtforge.vtcode.queries import query

    flags = query(
        cfg.landing_dir, "agent_step", "SELECT DISTINCT envelope.attributes['schema_newer'] FROM {t}"
    )
    assert flags == [("true",)]


def test_reconcile_adds_only_what_the_stream_missed(cfg: Config, sink: EventSink) -> None:
    """The stream got the first 8 lines (one snapshot, three steps); the file has all 30."""
    FIX.copy_vtcode_dir(cfg.root)
    importer = StreamImporter(sink, context=CONTEXT)
    importer.feed(FIX.stdout_lines()[:8])
    assert importer.result.events == 4
    added, skipped, _ = reconcile_session(
        cfg.root,
        FIX.session_id,
        sink,
        seen=importer.emitted,
        cursor_root=cfg.data_dir / "vtcode" / "cursors",
    )
    sink.flush()
    assert (skipped, added) == (4, 13)
    assert _table(steps(cfg)) == EXEC_FIX_STEPS
    assert raw_count(cfg, "agent_step") == (14, 14)
    assert make_tailer(cfg, sink).poll().events == 0  # the cursor was saved: tail reads nothing again


# --- hooks and notify (TUI only) ---------------------------------------------------------------


def test_tui_hooks_map_to_exact_steps() -> None:
    payloads = TUI.payloads("hooks.jsonl")
    events = [hook_step(p) for p in payloads]
    assert [e["status"] for e in events] == [
        "SessionStart",
        "UserPromptSubmit",
        *["PreToolUse", "PermissionRequest", "PostToolUse"] * 3,
        "Stop",
        "SessionEnd",
    ]
    assert {e["rollout_id"] for e in events} == {rollout_id_for(TUI.session_id)}
    assert {e["turn"] for e in events} == {0}  # turn ids are UUIDs, not numbers
    assert [e["tool_name"] for e in events[2:11]] == ["exec_command"] * 3 + ["apply_patch"] * 3 + [
        "exec_command"
    ] * 3
    assert [(e["files_changed"], e["lines_added"], e["lines_removed"]) for e in events[5:8]] == [PATCHED] * 3
    assert [e["exit_code"] for e in events if e["status"] == "PostToolUse"] == [1, None, 0]
    assert events[1]["arguments"] == "Fix the failing test in calc.py"
    assert events[-2]["output"] == "Task complete: calc.add now adds, and test_calc.py passes."
    # the two exec_command PermissionRequest payloads are byte-identical (no call id, no turn id),
    # so they are one event: the same id, as a retried hook must be
    assert payloads[3] == payloads[9]
    assert len({e["envelope"]["event_id"] for e in events}) == 12


def test_tui_notify_maps_to_one_step(cfg: Config) -> None:
    (payload,) = TUI.payloads("notify.jsonl")
    event = notify_step(payload)
    assert (event["kind"], event["tool_name"], event["status"], event["turn"]) == (
        "notification",
        "agent-turn-complete",
        "success",
        0,
    )
    assert event["output"] == "Task complete: calc.add now adds, and test_calc.py passes."
    assert json.loads(event["arguments"]) == ["Fix the failing test in calc.py"]
    assert event["rollout_id"] == rollout_id_for(TUI.session_id)


def test_recorded_hook_and_notify_land_through_the_commands(cfg: Config) -> None:
    """What vtcode passed, given to the hook/notify bodies as vtcode gives it (inline delivery)."""
    from vtforge.vtcode.hooks import handle

    hook_lines = [json.loads(line)["payload"] for line in (TUI.dir / "hooks.jsonl").read_text().splitlines()]
    notify_arg = json.loads((TUI.dir / "notify.jsonl").read_text())["payload"]
    outcomes = [handle("hook", text, inline=True) for text in hook_lines[4:5]]
    outcomes.append(handle("notify", notify_arg, inline=True))
    assert outcomes == ["delivered", "delivered"]
    landed = steps(cfg)
    assert [(s["kind"], s["tool_name"], s["status"], s["exit_code"]) for s in landed] in (
        [
            ("hook", "exec_command", "PostToolUse", 1),
            ("notification", "agent-turn-complete", "success", None),
        ],
        [
            ("notification", "agent-turn-complete", "success", None),
            ("hook", "exec_command", "PostToolUse", 1),
        ],
    )


def test_exec_workspace_follows_the_workspace_flag(tmp_path: Path) -> None:
    from vtforge.vtcode.stream import exec_workspace

    assert exec_workspace(["--json", "fix it"], tmp_path) == tmp_path
    assert exec_workspace(["--workspace", "ws", "fix it"], tmp_path) == tmp_path / "ws"
    assert exec_workspace(["--workspace=/abs/ws"], tmp_path) == Path("/abs/ws")
