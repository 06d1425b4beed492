"""The commands: tail, exec, ingest, hook, notify, drain, status, unknown.

They run in-process (tests/cli.py), except where the process is the point: the light
``python -m vtforge.vtcode hook`` entry VT Code spawns, and ``tail`` following a session until SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import invoke
from tests.vtcode.conftest import REPO, raw_count, steps
from tests.vtcode.vtcode_files import SessionWriter, sample_turns, unwrapped, wrap
from vtforge.config import Config
from vtforge.vtcode.deliver import spool_for
from vtforge.vtcode.mapping import rollout_id_for
from vtforge.vtcode.queries import latest_rollouts
from vtforge.vtcode.tailer import wait_for

POST_TOOL_USE = {
    "session_id": "sess-hook",
    "cwd": "/work/repo",
    "hook_event_name": "PostToolUse",
    "transcript_path": "/work/repo/.vtcode/sessions/sess-hook/events.jsonl",
    "tool_name": "apply_patch",
    "tool_input": {
        "input": "*** Begin Patch\n*** Update File: src/calc.py\n"
        "-    return a - b\n+    return a + b\n*** End Patch"
    },
    "tool_response": {"success": True, "exit_code": 0, "output": "Success. Updated src/calc.py"},
    "tool_call_id": "call_2",
}  # fmt: skip
TURN_COMPLETE = {
    "type": "agent-turn-complete",
    "thread-id": "sess-hook",
    "turn-id": "turn-2",
    "cwd": "/work/repo",
    "status": "success",
    "input-messages": ["fix add() in src/calc.py"],
    "last-assistant-message": "Fixed add() and added a test.",
}


def _fast_hook(ws: Path, payload: str, *args: str) -> subprocess.CompletedProcess[str]:
    """VT Code runs the hook command with the payload on stdin (here the light entry point).

    A real process on purpose: ``python -m vtforge.vtcode`` is its own entry point (not the Typer
    app), it must exit 0 fast with nothing on stdout, and ``--inline`` may end it with ``os._exit``."""
    return subprocess.run(
        [sys.executable, "-m", "vtforge.vtcode", "hook", *args],
        cwd=ws,
        input=payload,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_hook_emits_one_event_and_returns_at_once(cfg: Config, ws: Path) -> None:
    done = invoke("vtcode", "hook", stdin=json.dumps(POST_TOOL_USE))
    assert done.exit_code == 0 and done.stdout == ""  # vtcode reads a hook's stdout: we add nothing
    fast = _fast_hook(
        ws, json.dumps({**POST_TOOL_USE, "hook_event_name": "PreToolUse", "tool_response": None})
    )
    assert fast.returncode == 0 and fast.stdout == ""
    assert wait_for(lambda: len(steps(cfg, "kind = 'hook'")) == 2, 60), cfg.data_dir / "vtcode/drain.log"
    rows = {s["status"]: s for s in steps(cfg, "kind = 'hook'")}
    post = rows["PostToolUse"]
    assert (post["session"], post["tool_name"], post["exit_code"]) == ("sess-hook", "apply_patch", 0)
    assert (post["files_changed"], post["lines_added"], post["lines_removed"]) == (["src/calc.py"], 1, 1)
    assert json.loads(post["raw"])["tool_call_id"] == "call_2"
    assert spool_for(cfg).pending() == []


def test_notify_emits_one_event(cfg: Config, ws: Path) -> None:
    done = invoke("vtcode", "notify", json.dumps(TURN_COMPLETE))
    assert done.exit_code == 0 and done.stdout == ""
    assert wait_for(lambda: len(steps(cfg, "kind = 'notification'")) == 1, 60)
    (row,) = steps(cfg, "kind = 'notification'")
    assert (row["tool_name"], row["turn"], row["status"]) == ("agent-turn-complete", 2, "success")
    assert row["output"] == "Fixed add() and added a test."


def _block_landing(cfg: Config) -> Path:
    """Make the landing zone unwritable for real: a plain file where its folder should be."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cfg.landing_dir.write_text("not a folder")
    return cfg.landing_dir


def test_hook_spools_when_the_sink_is_unavailable_and_drain_delivers(cfg: Config, ws: Path) -> None:
    blocker = _block_landing(cfg)
    done = _fast_hook(ws, json.dumps(POST_TOOL_USE))
    assert done.returncode == 0
    log = cfg.data_dir / "vtcode" / "drain.log"
    assert wait_for(lambda: log.exists() and "stay spooled" in log.read_text(), 60)
    assert len(spool_for(cfg).pending()) == 1  # kept, not lost
    inline = _fast_hook(ws, json.dumps(TURN_COMPLETE | {"hook_event_name": "Stop"}), "--inline")
    assert inline.returncode == 0 and "spooled" in inline.stderr
    assert len(spool_for(cfg).pending()) == 2
    failed = invoke("vtcode", "drain")
    assert failed.exit_code == 1 and "2 events stay spooled" in failed.stderr
    blocker.unlink()
    drained = invoke("vtcode", "drain")
    assert drained.exit_code == 0, drained.stderr
    assert "2 spooled events delivered, 0 left" in drained.stdout
    assert len(steps(cfg, "kind = 'hook'")) == 2


def test_bad_hook_payload_is_quarantined_and_still_exits_zero(cfg: Config, ws: Path) -> None:
    import pyarrow.parquet as pq

    done = _fast_hook(ws, "{truncated")
    assert done.returncode == 0 and "quarantined" in done.stderr
    (row,) = [
        r
        for p in (cfg.quarantine_dir / "vtcode-hook").rglob("*.parquet")
        for r in pq.read_table(p).to_pylist()
    ]
    assert row["raw"] == b"{truncated"


def _fake_vtcode(ws: Path, stream: Path) -> Path:
    """A stand-in for the vtcode binary (the real one needs a hosted model): checks that it was
    asked for ``exec --json`` and prints a saved stream, as ``vtcode exec --json`` would."""
    script = ws / "fake-vtcode"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        "assert sys.argv[1:3] == ['exec', '--json'], sys.argv\n"
        "assert sys.argv[3:] == ['fix add() in src/calc.py'], sys.argv\n"
        f"for line in open({str(stream)!r}):\n"
        "    sys.stdout.write(line); sys.stdout.flush()\n"
        "sys.exit(3)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_exec_runs_vtcode_json_and_ingests_its_stdout(cfg: Config, ws: Path) -> None:
    stream = ws / "saved.jsonl"
    stream.write_text("".join(unwrapped(e) + "\n" for turn in sample_turns("thread-exec") for e in turn))
    script = _fake_vtcode(ws, stream)
    done = invoke(
        "vtcode", "exec", "--", "fix add() in src/calc.py", env={"VTFORGE_VTCODE__BINARY": str(script)}
    )
    assert done.exit_code == 3, done.stderr  # vtcode's own exit status comes back
    assert "session thread-exec" in done.stderr
    (rollout,) = latest_rollouts(cfg.landing_dir)
    assert rollout[0] == rollout_id_for("thread-exec") and rollout[2] == 3 and rollout[7] == "true"
    assert {s["source"] for s in steps(cfg)} == {"exec"}
    assert len(steps(cfg)) == 17


def test_exec_without_vtcode_installed_says_so(ws: Path) -> None:
    done = invoke("vtcode", "exec", "--", "task", env={"VTFORGE_VTCODE__BINARY": "/nonexistent/vtcode"})
    assert done.exit_code == 1 and "forge.vtcode.binary" in done.stderr


def test_import_a_saved_stream_from_a_file_and_from_stdin_through_the_alias(cfg: Config, ws: Path) -> None:
    saved = ws / "session.jsonl"
    saved.write_text("".join(wrap(e) + "\n" for turn in sample_turns("thread-file") for e in turn))
    from_file = invoke("vtcode", "import", str(saved))
    assert from_file.exit_code == 0 and "thread-file" in from_file.stdout
    text = "".join(unwrapped(e) + "\n" for turn in sample_turns("thread-stdin") for e in turn)
    from_stdin = invoke("vtcode", "ingest", "-", stdin=text)
    assert from_stdin.exit_code == 0 and "thread-stdin" in from_stdin.stdout
    assert {r[1] for r in latest_rollouts(cfg.landing_dir)} == {"thread-file", "thread-stdin"}
    assert invoke("vtcode", "import", "missing.jsonl").exit_code == 1


@pytest.mark.slow
def test_tail_follows_a_session_written_while_it_runs(cfg: Config, ws: Path) -> None:
    """Done-when: a session written while ``vtforge vtcode tail`` runs lands turn by turn."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A real process on purpose: tail runs until it is stopped, and SIGTERM must end it cleanly (exit 0)
    tail = subprocess.Popen(
        [sys.executable, "-m", "vtforge", "vtcode", "tail", str(ws), "--interval", "0.1"],
        cwd=ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        writer = SessionWriter(ws, "sess-live")
        for number, turn in enumerate(sample_turns("thread-live"), start=1):
            writer.write_turn(turn)

            def landed(n: int = number) -> bool:
                rollouts = latest_rollouts(cfg.landing_dir)
                turns = {s["turn"] for s in steps(cfg)}
                return bool(rollouts) and rollouts[0][2] == n and max(turns, default=0) == n

            assert wait_for(landed, 60), f"turn {number} did not land"
        assert tail.poll() is None  # still following
    finally:
        tail.send_signal(signal.SIGTERM)
        out, err = tail.communicate(timeout=60)
    assert tail.returncode == 0, err
    assert "events emitted" in out
    total, distinct = raw_count(cfg, "agent_step")
    assert total == distinct == 17
    status = invoke("vtcode", "status", str(ws))
    assert status.exit_code == 0 and "sessions/sess-live/events.jsonl" in status.stdout
    unknown = invoke("vtcode", "unknown")
    assert unknown.exit_code == 0
    assert "turn.paused" in unknown.stdout and "0.17.0" in unknown.stdout


def test_tail_once_and_the_tailer_lock(cfg: Config, ws: Path) -> None:
    SessionWriter(ws, "sess-once").write_turn(sample_turns()[0])
    done = invoke("vtcode", "tail", "--once")
    assert done.exit_code == 0, done.stderr
    assert "7 lines read, 6 events emitted" in done.stdout
    again = invoke("vtcode", "tail", "--once")
    assert "0 lines read, 0 events emitted" in again.stdout
    assert invoke("vtcode", "tail", str(ws / "nowhere")).exit_code == 1


def test_make_vtcode_builds_the_version_the_config_pins(tmp_path: Path) -> None:
    """`make vtcode` takes its version from forge.vtcode.version in vtcode.toml (one lever)."""
    from vtforge.config import load_config

    repo = Path(__file__).resolve().parents[2]
    shown = _make_vtcode_version(repo)
    assert shown == load_config(repo / "vtcode.toml", cwd=repo, env={}).forge.vtcode.version
    edited = tmp_path / "Makefile"
    edited.write_text((repo / "Makefile").read_text())
    (tmp_path / "vtcode.toml").write_text(
        '[forge.vtcode]\nversion = "9.8.7"\n[forge.serve]\nversion = "1.0.0"\n'
    )
    again = _make_vtcode_version(tmp_path)
    assert again == "9.8.7"


def _make_vtcode_version(folder: Path) -> str:
    """The VTCODE_VERSION `make` computes in ``folder`` (its Makefile and vtcode.toml)."""
    rule = "show-vtcode-version: ; @echo $(VTCODE_VERSION)"
    shown = subprocess.run(
        ["make", "--no-print-directory", "--eval", rule, "show-vtcode-version"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.strip()
