"""Hostile candidates on both backends: each is contained, gets a clear status, and the host is
unchanged afterwards (no file written, no secret read, no process left behind)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.toyrepo import ToyRepo
from vtforge.sandbox.api import Limits, PreparedRepo, RunRequest, Sandbox

pytestmark = pytest.mark.slow

HOSTILE_LIMITS = Limits(cpus=1.0, memory_mb=256, pids=64, timeout_s=6.0, file_size_mb=16)


def python_of(box: Sandbox) -> str:
    import sys

    return "python3" if box.name == "docker" else sys.executable


def hostile(box: Sandbox, prepared: PreparedRepo, code: str, **kw) -> object:
    """Run ``code`` with the strict limits (the box's own limits are put back afterwards)."""
    saved = box.limits
    box.limits = HOSTILE_LIMITS
    try:
        return box.run(prepared, RunRequest(command=[python_of(box), "-c", code], **kw))
    finally:
        box.limits = saved


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def processes_with(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def test_network_to_the_host_is_denied(box: Sandbox, prepared: PreparedRepo, listener: int) -> None:
    code = (
        f"import socket; socket.create_connection(('127.0.0.1', {listener}), timeout=3); print('CONNECTED')"
    )
    result = hostile(box, prepared, code)
    assert result.status == "denied", result.stderr_tail
    assert "CONNECTED" not in result.stdout_tail


def test_network_to_the_outside_is_denied(box: Sandbox, prepared: PreparedRepo) -> None:
    result = hostile(box, prepared, "import socket; socket.create_connection(('192.0.2.1', 80), timeout=3)")
    assert result.status == "denied"
    assert "unreachable" in result.stderr_tail


def test_reading_root_and_home_is_denied(box: Sandbox, prepared: PreparedRepo) -> None:
    secret = Path("/root") / f"vtforge-secret-{uuid.uuid4().hex[:8]}.txt"
    if not os.access("/root", os.W_OK):
        pytest.skip("needs to write a secret into /root")
    secret.write_text("TOP-SECRET-VALUE")
    try:
        result = hostile(box, prepared, f"print(open({str(secret)!r}).read())")
        assert result.status == "denied", result.stderr_tail
        assert "TOP-SECRET-VALUE" not in result.stdout_tail + result.stderr_tail
        listing = hostile(box, prepared, "import os; print(os.listdir('/root'), os.listdir('/home'))")
        assert secret.name not in listing.stdout_tail
    finally:
        secret.unlink()


@pytest.mark.parametrize("target", ["/etc/vtforge-pwned", "/usr/vtforge-pwned"])
def test_writing_outside_the_workspace_is_denied(box: Sandbox, prepared: PreparedRepo, target: str) -> None:
    result = hostile(box, prepared, f"open({target!r}, 'w').write('x')")
    assert result.status == "denied"
    assert "Read-only file system" in result.stderr_tail
    assert not Path(target).exists()


def test_writing_into_the_repository_on_the_host_is_impossible(
    box: Sandbox, prepared: PreparedRepo, toy: ToyRepo
) -> None:
    target = toy.path / "toycalc" / "__init__.py"
    before = target.read_text()
    result = hostile(box, prepared, f"open({str(target)!r}, 'a').write('# pwned')")
    assert result.status in ("denied", "completed") and result.exit_code != 0
    assert target.read_text() == before
    assert (prepared.source_dir / "toycalc" / "__init__.py").read_text() == before


def test_fork_bomb_is_contained(box: Sandbox, prepared: PreparedRepo) -> None:
    marker = f"forkbomb-{uuid.uuid4().hex[:8]}"
    code = f"import os, time\n# {marker}\nwhile True:\n    os.fork()\n"
    result = hostile(box, prepared, code)
    assert result.status in ("denied", "killed", "timeout"), (result.status, result.stderr_tail[-300:])
    time.sleep(0.5)
    assert processes_with(marker) == []


def test_ten_times_the_memory_limit_is_oom(box: Sandbox, prepared: PreparedRepo) -> None:
    size = 10 * HOSTILE_LIMITS.memory_mb * 1024 * 1024
    result = hostile(box, prepared, f"b = bytearray({size}); print(len(b))")
    assert result.status == "oom", (result.status, result.exit_code, result.stderr_tail[-300:])
    assert str(size) not in result.stdout_tail


def test_infinite_loop_times_out(box: Sandbox, prepared: PreparedRepo) -> None:
    marker = f"spin-{uuid.uuid4().hex[:8]}"
    result = hostile(box, prepared, f"# {marker}\nwhile True: pass", timeout_s=3.0)
    assert result.status == "timeout"
    assert result.duration_s < 60
    time.sleep(0.5)
    assert processes_with(marker) == []


def test_filling_the_disk_stops_at_the_file_size_limit(box: Sandbox, prepared: PreparedRepo) -> None:
    code = "f = open('big', 'wb')\nwhile True:\n    f.write(b'0' * (1 << 20))\n"
    result = hostile(box, prepared, code)
    assert result.status in ("denied", "killed"), result.stderr_tail[-300:]
    assert "File too large" in result.stderr_tail or result.status == "killed"


def test_background_processes_do_not_outlive_the_run(box: Sandbox, prepared: PreparedRepo) -> None:
    marker = f"{uuid.uuid4().int % 100000 + 100000}"
    result = box.run(
        prepared, RunRequest(command=["sh", "-c", f"(sleep {marker} &); nohup sleep {marker} & echo started"])
    )
    assert result.status == "completed" and "started" in result.stdout_tail
    time.sleep(0.5)
    assert processes_with(f"sleep {marker}") == []


def test_a_hostile_test_fails_as_a_test(box: Sandbox, prepared: PreparedRepo) -> None:
    """Inside pytest, a boundary hit is the test's failure; the run itself completes and is graded."""
    patch = (
        "diff --git a/tests/test_evil.py b/tests/test_evil.py\nnew file mode 100644\n--- /dev/null\n"
        "+++ b/tests/test_evil.py\n@@ -0,0 +1,2 @@\n+def test_evil():\n+    open('/etc/vtforge-pwned', 'w')\n"
    )
    result = box.run(prepared, RunRequest(patches=[patch], tests=["tests/test_evil.py::test_evil"]))
    assert result.status == "completed"
    assert result.tests["tests/test_evil.py::test_evil"].status == "FAILED"
    assert not Path("/etc/vtforge-pwned").exists()


@pytest.mark.bwrap
def test_rlimits_alone_contain_the_local_backend(local_box: Sandbox, toy: ToyRepo) -> None:
    """Without per-run cgroups (not root), rlimits still stop a fork bomb and a memory hog."""
    from vtforge.sandbox.api import RepoSpec

    prepared = local_box.prepare(RepoSpec(toy.path, toy.base_commit))
    saved = local_box.use_cgroups  # type: ignore[attr-defined]
    local_box.use_cgroups = False  # type: ignore[attr-defined]
    try:
        marker = f"rl-bomb-{uuid.uuid4().hex[:8]}"
        bomb = hostile(local_box, prepared, f"import os\n# {marker}\nwhile True:\n    os.fork()\n")
        assert bomb.status in ("denied", "killed", "timeout")
        hog = hostile(local_box, prepared, f"b = bytearray({10 * HOSTILE_LIMITS.memory_mb * 1024 * 1024})")
        assert hog.status == "oom"
    finally:
        local_box.use_cgroups = saved  # type: ignore[attr-defined]
    time.sleep(0.5)
    assert processes_with(marker) == []
