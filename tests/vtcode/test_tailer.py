"""The tailer: turn by turn, partial lines, in-place rewrites, rotation, restarts, idempotence."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

from tests.vtcode.conftest import make_tailer, raw_count, steps
from tests.vtcode.vtcode_files import SessionWriter, TrajectoryWriter, item, sample_turns, usage, wrap
from vtforge.config import Config
from vtforge.transport import sink_from_config
from vtforge.transport.sink import EventSink
from vtforge.vtcode.queries import latest_rollouts, query
from vtforge.vtcode.tailer import WorkspaceTailer


def _turn(n: int, thread: str = "t") -> list:
    """A small extra turn (n ≥ 4) with one command and its usage."""
    return [
        {"type": "turn.started"},
        item(f"x{n}", "command_execution", command=f"make step{n}", aggregated_output="ok", exit_code=0,
             status="completed"),
        {"type": "turn.completed", "usage": usage(100 * n, 10 * n, n)},
    ]  # fmt: skip


def _turns_in_landing(cfg: Config) -> list[int]:
    return sorted({s["turn"] for s in steps(cfg)})


def test_a_session_lands_turn_by_turn(cfg: Config, tailer: WorkspaceTailer) -> None:
    writer = SessionWriter(cfg.root, "sess-a")
    turns = sample_turns()
    for number, turn in enumerate(turns, start=1):
        writer.write_turn(turn)
        stats = tailer.poll()
        assert stats.events > 0 and not stats.errors
        assert _turns_in_landing(cfg) == list(range(1, number + 1))
        (rollout,) = latest_rollouts(cfg.landing_dir)
        assert rollout[1] == "sess-a" and rollout[2] == number
    assert rollout[6:] == ("resolved", "true")
    assert tailer.poll().events == 0  # nothing new, nothing emitted
    assert raw_count(cfg, "agent_step")[0] == raw_count(cfg, "agent_step")[1]


def test_new_sessions_are_picked_up(cfg: Config, tailer: WorkspaceTailer) -> None:
    SessionWriter(cfg.root, "first").write_turn(sample_turns("a")[0])
    tailer.poll()
    SessionWriter(cfg.root, "second").write_turn(sample_turns("b")[0])
    tailer.poll()
    assert {s["session"] for s in steps(cfg)} == {"first", "second"}
    assert len(latest_rollouts(cfg.landing_dir)) == 2


def test_partial_last_line_waits_for_its_newline(cfg: Config, tailer: WorkspaceTailer) -> None:
    writer = SessionWriter(cfg.root, "sess-p")
    writer.write_turn(sample_turns()[0][:3])  # thread.started, turn.started, reasoning
    line = wrap(item("p1", "agent_message", text="half written"))
    writer.write_partial(line[:25])
    tailer.poll()
    assert [s["kind"] for s in steps(cfg)] == ["reasoning"]
    writer.write_partial(line[25:] + "\n")
    tailer.poll()
    assert [s["kind"] for s in steps(cfg)] == ["reasoning", "agent_message"]
    assert steps(cfg)[1]["output"] == "half written"


def test_in_place_rewrite_keeps_place_and_turn_numbers(cfg: Config, tailer: WorkspaceTailer) -> None:
    writer = SessionWriter(cfg.root, "sess-r")
    for turn in sample_turns()[:2]:
        writer.write_turn(turn)
    tailer.poll()
    before = {s["event_id"] for s in steps(cfg)}
    inode = writer.path.stat().st_ino
    writer.evict_oldest_turns(1)  # vtcode's cap: turn 1 is cut out of the same file
    writer.write_turn(_turn(3))
    assert writer.path.stat().st_ino == inode
    stats = tailer.poll()
    assert stats.realigned == 1 and stats.restarted == 0
    after = steps(cfg)
    assert {s["event_id"] for s in after} >= before
    new = [s for s in after if s["event_id"] not in before]
    assert [(s["turn"], s["kind"]) for s in new] == [(3, "command_execution")]
    total, distinct = raw_count(cfg, "agent_step")
    assert total == distinct  # nothing emitted twice


def test_rewrite_that_cut_unread_turns_restarts_from_vtcodes_turn_index(
    cfg: Config, tailer: WorkspaceTailer
) -> None:
    writer = SessionWriter(cfg.root, "sess-b")
    writer.write_turn(sample_turns()[0])
    tailer.poll()
    writer.write_turn(_turn(2))
    writer.write_turn(_turn(3))
    writer.evict_oldest_turns(2)  # turns 1 and 2 are gone, turn 2 was never read
    writer.write_turn(_turn(4))
    first = tailer.poll()
    assert first.restarted == 0 and first.events == 0  # a rewrite may be in progress: wait a poll
    second = tailer.poll()
    assert second.restarted == 1
    assert _turns_in_landing(cfg) == [1, 3, 4]
    total, distinct = raw_count(cfg, "agent_step")
    assert total == distinct


def test_restart_resumes_from_the_persisted_cursor(cfg: Config) -> None:
    writer = SessionWriter(cfg.root, "sess-c")
    turns = sample_turns()
    writer.write_turn(turns[0])
    with sink_from_config(cfg) as sink:
        make_tailer(cfg, sink).poll()
    writer.write_turn(turns[1])
    writer.write_turn(turns[2])
    with sink_from_config(cfg) as sink:  # a new process: nothing in memory
        stats = make_tailer(cfg, sink).poll()
    assert stats.lines == len(turns[1]) + len(turns[2])  # only the new lines were read
    total, distinct = raw_count(cfg, "agent_step")
    assert total == distinct
    assert _turns_in_landing(cfg) == [1, 2, 3]
    # the final snapshot still has the whole conversation (rebuilt from the file on restart)
    ((messages,),) = query(
        cfg.landing_dir,
        "rollout",
        "SELECT messages FROM {t} WHERE envelope.attributes['final'] = 'true'",
    )
    # turn 1: read_file call + output + reply; turn 2: pytest + apply_patch; turn 3: two edits + reply
    assert len(messages) == 8
    assert messages[0]["name"] == "read_file" and messages[2]["content"] == "Found it: add() subtracts."
    (rollout,) = latest_rollouts(cfg.landing_dir)
    assert rollout[2:5] == (3, 6600, 420)


def test_lost_cursors_replay_the_same_event_ids(cfg: Config, tailer: WorkspaceTailer) -> None:
    writer = SessionWriter(cfg.root, "sess-d")
    for turn in sample_turns():
        writer.write_turn(turn)
    tailer.poll()
    first = {s["event_id"] for s in steps(cfg)}
    shutil.rmtree(cfg.data_dir / "vtcode" / "cursors")
    with sink_from_config(cfg) as sink:
        make_tailer(cfg, sink).poll()  # reads it all again
    total, distinct = raw_count(cfg, "agent_step")
    assert total == 2 * distinct  # emitted again, but as the very same events
    assert {s["event_id"] for s in steps(cfg)} == first


def test_trajectory_log_rotation(cfg: Config, tailer: WorkspaceTailer) -> None:
    started = datetime.now(UTC) - timedelta(minutes=5)
    SessionWriter(cfg.root, "sess-old", created_at=started)
    SessionWriter(cfg.root, "sess-new", created_at=started + timedelta(minutes=2))
    log = TrajectoryWriter(cfg.root)
    t0 = int(started.timestamp()) + 10
    log.route(1, "gpt-5.4", t0)
    log.tool(1, "read_file", {"path": "src/calc.py"}, True, t0 + 1)
    tailer.poll()
    log.tool(
        2,
        "apply_patch",
        {"input": "*** Begin Patch\n*** Update File: a.py\n+x\n*** End Patch"},
        False,
        t0 + 2,
    )
    rotated = log.rotate("20261128T010000Z")  # a new session starts: the old file is renamed...
    log.tool(1, "run_pty_cmd", {"command": "pytest"}, True, t0 + 150)  # ...and a fresh one begun
    log.metric("tool_latency_ms", 12.5, t0 + 151)
    tailer.poll()
    rows = steps(cfg, "envelope.attributes['source'] = 'trajectory'")
    names = [(r["kind"], r["tool_name"]) for r in rows]
    assert sorted(names, key=str) == sorted(
        [
            ("trajectory_route", "gpt-5.4"),
            ("trajectory_tool", "read_file"),
            ("trajectory_tool", "apply_patch"),
            ("trajectory_tool", "run_pty_cmd"),
            ("trajectory_tool_latency_ms", None),
        ],
        key=str,
    )
    patch = next(r for r in rows if r["tool_name"] == "apply_patch")
    assert (patch["status"], patch["files_changed"], patch["lines_added"]) == ("failed", ["a.py"], 1)
    sessions = {r["tool_name"]: r["session"] for r in rows}
    assert sessions["read_file"] == "sess-old" and sessions["run_pty_cmd"] == "sess-new"
    assert rotated.exists()
    assert tailer.poll().events == 0
    total, distinct = raw_count(cfg, "agent_step")
    assert total == distinct == 5


def test_bad_line_in_a_session_is_quarantined(cfg: Config, tailer: WorkspaceTailer) -> None:
    import pyarrow.parquet as pq

    writer = SessionWriter(cfg.root, "sess-q")
    writer.write_turn(sample_turns()[0][:3])
    writer.write_partial("this is not json\n")
    writer.write_turn([item("q1", "agent_message", text="still here")])
    stats = tailer.poll()
    assert stats.quarantined == 1
    (row,) = [
        r for p in (cfg.quarantine_dir / "vtcode").rglob("*.parquet") for r in pq.read_table(p).to_pylist()
    ]
    assert row["raw"] == b"this is not json\n" and "events.jsonl@" in row["location"]
    assert [s["kind"] for s in steps(cfg)] == ["reasoning", "agent_message"]


def test_spooled_events_are_drained_by_the_tailer(cfg: Config, tailer: WorkspaceTailer) -> None:
    from vtforge.vtcode.deliver import spool_for
    from vtforge.vtcode.mapping import hook_step

    spool = spool_for(cfg)
    spool.put([hook_step({"session_id": "s1", "hook_event_name": "SessionStart", "source": "startup"})])
    assert len(spool.pending()) == 1
    stats = tailer.poll()
    assert stats.drained == 1 and spool.pending() == []
    assert [s["kind"] for s in steps(cfg)] == ["hook"]


def test_a_second_tailer_on_the_same_workspace_is_refused(cfg: Config, sink: EventSink) -> None:
    import threading

    import pytest

    stop = threading.Event()
    first = make_tailer(cfg, sink)
    thread = threading.Thread(target=first.run, kwargs={"interval_s": 0.05, "stop": stop})
    thread.start()
    try:
        from vtforge.vtcode.tailer import wait_for

        assert wait_for(lambda: (first.cursors.dir / ".lock").exists(), 10)
        with pytest.raises(RuntimeError, match="another vtforge tailer"):
            make_tailer(cfg, sink).run(max_polls=1)
    finally:
        stop.set()
        thread.join(10)


def test_cursor_files_live_under_the_data_dir(cfg: Config, tailer: WorkspaceTailer) -> None:
    SessionWriter(cfg.root, "sess-e").write_turn(sample_turns()[0])
    tailer.poll()
    (cursor_file,) = (cfg.data_dir / "vtcode" / "cursors").glob("*/session-sess-e.json")
    saved = json.loads(cursor_file.read_text())
    assert saved["offset"] == (cfg.root / ".vtcode/sessions/sess-e/events.jsonl").stat().st_size
    assert saved["state"]["turn"] == 1 and saved["state"]["turns_completed"] == 1


def test_warehouse_agent_steps_and_rollouts_turn_by_turn(cfg: Config, tailer: WorkspaceTailer) -> None:
    """Done-when, through the warehouse's own refresh (the tables a user queries)."""
    import duckdb

    from vtforge.warehouse.refresh import refresh

    writer = SessionWriter(cfg.root, "sess-wh")
    for number, turn in enumerate(sample_turns("thread-wh"), start=1):
        writer.write_turn(turn)
        tailer.poll()
        refresh(cfg, exports=False)
        with duckdb.connect(str(cfg.duckdb_path), read_only=True) as con:
            rollouts = con.execute(
                "SELECT role, stage, num_turns, prompt_tokens, outcome FROM rollouts"
            ).fetchall()
            turns = con.execute("SELECT DISTINCT turn FROM agent_steps ORDER BY turn").fetchall()
        assert rollouts == [
            ("agent", "agentic", number, [1200, 3600, 6600][number - 1], None if number < 3 else "resolved")
        ]
        assert [t for (t,) in turns] == list(range(1, number + 1))
