"""Drive the real VT Code binary offline against the scripted model server, and keep what it wrote.

Used by ``scripts/record_vtcode.py`` (which commits recordings under
``tests/vtcode/recordings/<name>/``) and by ``test_real_binary.py`` (a fresh run each time).
Everything happens in a temporary root: ``home/`` (a throwaway HOME whose user config names the
scripted endpoint, because vtcode refuses ``custom_providers`` in a workspace config) and ``ws/``
(a tiny buggy Python project with a workspace ``vtcode.toml``).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.vtcode.scripted_server import MODEL, Script, serve
from vtforge import constants as C

VTCODE_VERSION = C.VTCODE_VERSION  # forge.vtcode.version: what `make vtcode` builds
PROVIDER = "scripted"
WORKSPACE_MARK = "/RECORDING/ws"  # what the temp paths become in committed recordings
HOME_MARK = "/RECORDING/home"
ROOT_MARK = "/RECORDING"
PROMPT = "Fix the failing test in calc.py"

CALC = "def add(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX_PATCH = (
    "*** Begin Patch\n*** Update File: calc.py\n@@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    "*** End Patch\n"
)
PYTEST = {"cmd": "python -m pytest -q test_calc.py"}


def fix_script() -> list[dict[str, Any]]:
    """Run the tests, patch the bug, run them again, say so."""
    return [
        {"tool_calls": [{"name": "exec_command", "arguments": PYTEST}]},
        {"tool_calls": [{"name": "apply_patch", "arguments": {"input": FIX_PATCH}}]},
        {"tool_calls": [{"name": "exec_command", "arguments": PYTEST}]},
        {"content": "Task complete: calc.add now adds, and test_calc.py passes."},
    ]


def find_binary() -> Path | None:
    """``VTFORGE_VTCODE_BIN``, else ``vtcode`` on PATH, else the ``make vtcode`` cache."""
    named = os.environ.get("VTFORGE_VTCODE_BIN")
    if named:
        return Path(named) if Path(named).is_file() else None
    on_path = shutil.which("vtcode")
    if on_path:
        return Path(on_path)
    cached = Path.home() / ".cache" / "vtforge" / "vtcode" / VTCODE_VERSION / "bin" / "vtcode"
    return cached if cached.is_file() else None


def user_config(
    base_url: str,
    *,
    notify: list[str] | None = None,
    hook: str | None = None,
    model: str = MODEL,
    max_tokens: int | None = None,
) -> str:
    """The user-level config: the only place vtcode accepts a custom endpoint, and where hooks
    run without the workspace-hook approval dialog."""
    head = f"notify = {json.dumps(notify)}\n\n" if notify else ""  # top-level: before any table
    return (
        head
        + hooks_table(hook)
        + (
            "[[custom_providers]]\n"
            f'name = "{PROVIDER}"\n'
            'display_name = "Scripted"\n'
            f'base_url = "{base_url}"\n'
            'api_format = "openai-chat"\n'
            f'model = "{model}"\n'
            'api_key_env = "SCRIPTED_API_KEY"\n' + (f"max_tokens = {max_tokens}\n" if max_tokens else "")
        )
    )


def hooks_table(hook: str | None) -> str:
    """``[hooks.lifecycle]`` running ``hook`` for every event vtcode has."""
    if not hook:
        return ""
    entry = f'[ {{ hooks = [ {{ command = "{hook}", timeout_seconds = 10 }} ] }} ]'
    matched = f'[ {{ matcher = "*", hooks = [ {{ command = "{hook}", timeout_seconds = 10 }} ] }} ]'
    text = "[hooks.lifecycle]\n"
    for name in ("session_start", "user_prompt_submit", "stop", "session_end"):
        text += f"{name} = {entry}\n"
    for name in ("pre_tool_use", "post_tool_use", "permission_request"):
        text += f"{name} = {matched}\n"
    return text + "\n"


def workspace_config(model: str = MODEL) -> str:
    """The workspace config: model, single-agent exec, tools allowed, the trajectory log."""
    return (
        "[agent]\n"
        f'provider = "{PROVIDER}"\n'
        f'default_model = "{model}"\n'
        "temperature = 0.0\n\n"
        "[agent.harness]\n"
        'orchestration_mode = "single"\n'
        'continuation_policy = "off"\n\n'
        "[tools]\n"
        'default_policy = "allow"\n\n'
        "[tools.policies]\n"
        'apply_patch = "allow"\n'
        'exec_command = "allow"\n\n'
        "[automation.full_auto]\n"
        "enabled = true\n"
        "require_profile_ack = false\n\n"
        "[telemetry]\n"
        "trajectory_enabled = true\n"
    )


CAPTURE = """import json, os, sys, time
kind = sys.argv[1]
data = sys.stdin.read() if kind == "hook" else (sys.argv[2] if len(sys.argv) > 2 else "")
env = {k: v for k, v in os.environ.items() if k.startswith(("CLAUDE_", "VTCODE_HOOK", "VT_"))}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), kind + "s.jsonl"), "a") as out:
    row = {"argv": sys.argv[1:] if kind == "hook" else [], "env": env, "payload": data}
    out.write(json.dumps(row) + "\\n")
"""


TERMINAL_ANSWERS = ((b"\x1b[6n", b"\x1b[1;1R"),)  # cursor position; other answers would read as Esc
# dialogs the TUI opens, and the key that takes the first (approving) choice
DIALOGS = (("Workspace Lifecycle Hooks", b"\r"), ("Permission Required", b"\r"))
_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>= ]*[A-Za-z@~]|\x1b[\]P][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[78=>]")


def screen_text(data: bytes) -> str:
    """What a terminal would show, roughly: escape sequences dropped."""
    return _ESCAPES.sub(b"", data).decode("utf-8", "replace")


@dataclass
class Run:
    """One recorded run: where it happened and what came back."""

    root: Path
    command: list[str]
    returncode: int | None = None
    stdout: str = ""
    seconds: float = 0.0
    script: Script | None = None
    line_times: list[float] = field(default_factory=list)  # monotonic arrival of each stdout line
    dialogs: list[str] = field(default_factory=list)  # TUI dialogs the harness answered, in order

    @property
    def ws(self) -> Path:
        return self.root / "ws"

    @property
    def home(self) -> Path:
        return self.root / "home"


def prepare(
    root: Path, base_url: str, *, tui: bool = False, model: str = MODEL, max_tokens: int | None = None
) -> tuple[Path, Path]:
    """Write HOME's user config, the buggy project and the workspace config."""
    home, ws = root / "home", root / "ws"
    (home / ".config" / "vtcode").mkdir(parents=True, exist_ok=True)
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "calc.py").write_text(CALC)
    (ws / "test_calc.py").write_text(TEST_CALC)
    notify = hook = None
    if tui:
        capture = root / "capture" / "capture.py"
        capture.parent.mkdir(exist_ok=True)
        capture.write_text(CAPTURE)
        notify = [sys.executable, str(capture), "notify"]
        hook = f"{sys.executable} {capture} hook"
    (home / ".config" / "vtcode" / "vtcode.toml").write_text(
        user_config(base_url, notify=notify, hook=hook, model=model, max_tokens=max_tokens)
    )
    (ws / "vtcode.toml").write_text(workspace_config(model))
    return home, ws


def environment(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "USER": "root",  # vtcode warns on every command without one
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "SCRIPTED_API_KEY": "scripted",
        "VTCODE_TRUST_WORKSPACE": "full-auto",  # exec refuses an untrusted workspace
        "TERM": "xterm-256color",
    }


def run_exec(
    binary: Path,
    script: Script | None,
    *,
    root: Path | None = None,
    kill_after_lines: int | None = None,
    timeout_s: float = 240.0,
    extra_args: list[str] | None = None,
    base_url: str | None = None,
    model: str = MODEL,
    max_tokens: int | None = None,
) -> Run:
    """``vtcode exec --json --events FILE PROMPT`` against the scripted server (or ``base_url``,
    e.g. ``vtforge serve``); stdout kept line by line."""
    root = root or Path(tempfile.mkdtemp(prefix="vtcode-rec-"))
    with serve(script or Script([])) as scripted:
        home, ws = prepare(root, base_url or scripted, model=model, max_tokens=max_tokens)
        command = [
            str(binary),
            "exec",
            "--json",
            "--events",
            str(root / "events-export.jsonl"),
            *(extra_args or []),
            PROMPT,
        ]
        run = Run(root, command, script=script)
        started = time.monotonic()
        process = subprocess.Popen(
            ["nice", "-n", "5", *command],
            cwd=ws,
            env=environment(home),
            stdout=subprocess.PIPE,
            stderr=open(root / "stderr.txt", "wb"),  # noqa: SIM115 - closed with the process
            stdin=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        lines: list[bytes] = []
        deadline = started + timeout_s
        for raw in iter(process.stdout.readline, b""):
            lines.append(raw)
            run.line_times.append(time.monotonic())
            if kill_after_lines is not None and len(lines) >= kill_after_lines:
                process.send_signal(signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                process.kill()
                break
        run.stdout = b"".join(lines).decode("utf-8", "replace")
        run.returncode = process.wait(timeout=30)
        run.seconds = time.monotonic() - started
    return run


def run_tui(binary: Path, script: Script, *, root: Path | None = None, timeout_s: float = 180.0) -> Run:
    """The interactive TUI in a pseudo-terminal: type the prompt, wait for the turn, quit."""
    root = root or Path(tempfile.mkdtemp(prefix="vtcode-rec-"))
    with serve(script) as url:
        home, ws = prepare(root, url, tui=True)
        command = [str(binary)]
        run = Run(root, command, script=script)
        started = time.monotonic()
        pid, fd = pty.fork()
        if pid == 0:  # the child: vtcode on the pty
            os.chdir(ws)
            os.execvpe(
                "nice", ["nice", "-n", "5", *command], {**environment(home), "COLUMNS": "120", "LINES": "40"}
            )
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        screen = bytearray()
        answered: dict[str, int] = {}

        def pump(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    screen.extend(chunk)
                    for query, answer in TERMINAL_ANSWERS:  # a terminal answers these queries
                        if query in chunk:
                            os.write(fd, answer)
                    for title, key in DIALOGS:  # answer a dialog once per appearance
                        shown = screen_text(bytes(screen[answered.get(title, 0) :])).replace(" ", "")
                        if title.replace(" ", "") in shown:
                            answered[title] = len(screen)
                            run.dialogs.append(title)
                            time.sleep(0.5)
                            os.write(fd, key)

        def wait_until(predicate: Any, seconds: float) -> bool:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pump(0.3)
                if predicate():
                    return True
            return False

        notified = root / "capture" / "notifys.jsonl"
        pump(8.0)  # start-up; any dialog (permission, workspace hooks) is answered in pump
        for ch in PROMPT:
            os.write(fd, ch.encode())
            pump(0.02)
        os.write(fd, b"\r")
        wait_until(lambda: notified.exists() and notified.stat().st_size > 0, timeout_s)
        pump(2.0)
        os.write(fd, b"\x04")  # Ctrl+D: exit, which ends the session (SessionEnd, events flushed)
        pump(5.0)
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                os.write(fd, b"\x03")
                pump(1.0)
                os.write(fd, b"\x03")
                pump(2.0)
                done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                os.kill(pid, signal.SIGTERM)
                pump(2.0)
                done, status = os.waitpid(pid, 0)
            run.returncode = os.waitstatus_to_exitcode(status)
        finally:
            os.close(fd)
        (root / "screen.txt").write_bytes(bytes(screen))
        run.seconds = time.monotonic() - started
    return run


# --- collecting what vtcode wrote ------------------------------------------------------------------


def _placeholders(text: str, run: Run) -> str:
    for path, mark in ((run.ws, WORKSPACE_MARK), (run.home, HOME_MARK), (run.root, ROOT_MARK)):
        text = text.replace(str(path.resolve()), mark).replace(str(path), mark)
    return text


def request_log(script: Script) -> list[dict[str, Any]]:
    """What the server got, small: per request its shape, not the (large) system prompt."""
    out = []
    for entry in script.requests:
        body = entry.get("body") or {}
        messages = body.get("messages") or []
        out.append(
            {
                "method": entry["method"],
                "path": entry["path"],
                "served_turn": entry.get("served_turn"),
                "model": body.get("model"),
                "stream": body.get("stream"),
                "roles": [m.get("role") for m in messages if isinstance(m, dict)],
                "tool_names": [
                    t.get("name") or (t.get("function") or {}).get("name") for t in body.get("tools") or []
                ],
                "tool_shapes": sorted({",".join(sorted(t)) for t in body.get("tools") or []}),
            }
        )
    return out


def collect(run: Run, dest: Path, *, scenario: str, description: str) -> dict[str, Any]:
    """Copy everything vtcode wrote (paths replaced by placeholders) and a ``recording.json``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    files: list[str] = []

    def put(relative: str, text: str) -> None:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_placeholders(text, run), encoding="utf-8")
        files.append(relative)

    vt = run.ws / ".vtcode"
    for path in sorted((vt / "sessions").glob("*/**/*")) if (vt / "sessions").is_dir() else []:
        if path.is_file() and path.suffix in (".jsonl", ".json"):
            put(str(path.relative_to(run.ws)), path.read_text(encoding="utf-8", errors="replace"))
    for path in sorted((vt / "logs").glob("trajectory*.jsonl")) if (vt / "logs").is_dir() else []:
        put(str(path.relative_to(run.ws)), path.read_text(encoding="utf-8", errors="replace"))
    for path in sorted(vt.rglob("atif-trajectory.json")) if vt.is_dir() else []:
        put(str(path.relative_to(run.ws)), path.read_text(encoding="utf-8", errors="replace"))
    if run.stdout:
        put("exec-stdout.jsonl", run.stdout)
    export = run.root / "events-export.jsonl"
    export_note = "not written"
    if export.is_file():
        exported = export.read_text(encoding="utf-8", errors="replace")
        if exported == run.stdout:
            export_note = "byte-identical to exec-stdout.jsonl, so not kept twice"
        else:
            put("events-export.jsonl", exported)
            export_note = f"kept: {len(exported)} bytes, stdout had {len(run.stdout)}"
    for name in ("hooks.jsonl", "notifys.jsonl"):
        path = run.root / "capture" / name
        if path.is_file():
            put(name.replace("notifys", "notify"), path.read_text(encoding="utf-8", errors="replace"))
    if run.script is not None:
        put("requests.json", json.dumps(request_log(run.script), indent=1) + "\n")
        first = next((e for e in run.script.requests if (e.get("body") or {}).get("tools")), None)
        if first is not None:
            put("tools.json", json.dumps(first["body"]["tools"], indent=1) + "\n")
        put(
            "script.json",
            json.dumps({"turns": run.script.turns, "repeat_last": run.script.repeat_last}, indent=1) + "\n",
        )
    put("calc.py.after", (run.ws / "calc.py").read_text())
    meta = {
        "vtcode_version": VTCODE_VERSION,
        "scenario": scenario,
        "description": description,
        "command": [Path(run.command[0]).name, *(_placeholders(a, run) for a in run.command[1:])],
        "returncode": run.returncode,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(run.seconds, 2),
        "normalised": (
            f"only the temporary paths: the workspace became {WORKSPACE_MARK}, HOME {HOME_MARK}, the run's "
            f"temporary root {ROOT_MARK}; "
            "requests.json is a summary of each request (the system prompt is not kept), tools.json "
            "the tool definitions of the first request verbatim; byte counts vtcode wrote (manifest "
            "persisted_file_len, index/turns.json offsets) are of the original, unreplaced files"
        ),
        "events_export": export_note,
        **({"dialogs_answered": run.dialogs} if run.dialogs else {}),
        "files": sorted(files),
    }
    (dest / "recording.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta
