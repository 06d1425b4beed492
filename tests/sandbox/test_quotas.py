"""The quotas and clean-up of the local backend: a per-run disk quota, stale runs of a killed parent
swept at the next start, and freeing prepared repositories (by hand and by an LRU bound)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.sandbox.conftest import TEST_LIMITS
from tests.sandbox.toyrepo import ToyRepo, make_toy_repo
from tests.support import require_service
from vtforge.sandbox.api import RepoSpec, RunRequest
from vtforge.sandbox.rundir import mounts_under

pytestmark = pytest.mark.bwrap

REPO = Path(__file__).resolve().parents[2]

FILL = "import os\nfor i in range(10000):\n    open(f'/tmp/tmp/f{i}', 'w').write('x' * 100)\n"

FILLING_TEST = """diff --git a/tests/test_fill.py b/tests/test_fill.py
new file mode 100644
--- /dev/null
+++ b/tests/test_fill.py
@@ -0,0 +1,4 @@
+def test_fill():
+    for i in range(10000):
+        with open(f"fill-{i}.txt", "w") as handle:
+            handle.write("x" * 100)
"""


@pytest.fixture
def as_root() -> None:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    require_service(os.geteuid() == 0, "root (mounts for the disk quota)")


@pytest.mark.usefixtures("as_root")
def test_many_small_files_hit_the_disk_quota(tmp_path: Path, toy: ToyRepo) -> None:
    from vtforge.sandbox.local import LocalSandbox

    for warm in (False, True):
        box = LocalSandbox(TEST_LIMITS, work_dir=tmp_path / f"q{warm}", warm=warm, disk_mb=8)
        try:
            prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
            result = box.run(prepared, RunRequest(command=[sys.executable, "-c", FILL]))
            assert result.status == "disk_quota", (result.status, result.stderr_tail[-500:])
            # inside pytest the quota fails the test that fills it (warm or cold alike)
            run = box.run(
                prepared, RunRequest(patches=[FILLING_TEST], tests=["tests/test_fill.py::test_fill"])
            )
            assert "tests/test_fill.py::test_fill" in run.tests, (
                run.status,
                run.error,
                run.stdout_tail[-1500:],
                run.stderr_tail[-1500:],
            )
            outcome = run.tests["tests/test_fill.py::test_fill"]
            assert run.status == "completed" and outcome.status == "FAILED"
            assert "No space left on device" in (outcome.message or "")
        finally:
            box.close()
        assert not mounts_under(tmp_path / f"q{warm}")


@pytest.mark.usefixtures("as_root")
def test_runs_of_a_killed_parent_are_swept_at_the_next_start(tmp_path: Path, toy: ToyRepo) -> None:
    work = tmp_path / "killed"
    script = textwrap.dedent(
        f"""
        import sys, threading, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from tests.sandbox.conftest import TEST_LIMITS
        from vtforge.sandbox.api import RepoSpec, RunRequest
        from vtforge.sandbox.local import LocalSandbox
        box = LocalSandbox(TEST_LIMITS, work_dir=Path({str(work)!r}), warm=True, disk_mb=8)
        prepared = box.prepare(RepoSpec(Path({str(toy.path)!r}), {toy.base_commit!r}))
        print(box.run(prepared, RunRequest(tests=["tests/test_basic.py::test_mul"])).status, flush=True)
        threading.Thread(target=box.run, args=(prepared, RunRequest(command=["sleep", "60"]))).start()
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "completed"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            p.endswith("/workspace") for p in mounts_under(work / "runs")
        ):
            time.sleep(0.1)
        assert any(p.endswith("/workspace") for p in mounts_under(work / "runs")), "the run did not start"
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert mounts_under(work / "runs") and mounts_under(work / "warm")  # left behind
    assert list((work / "runs").iterdir()) and list((work / "warm").iterdir())

    from vtforge.sandbox.local import LocalSandbox

    box = LocalSandbox(TEST_LIMITS, work_dir=work, disk_mb=8)
    try:
        prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
        assert box.run(prepared, RunRequest(tests=["tests/test_basic.py::test_mul"])).status == "completed"
    finally:
        box.close()
    assert not mounts_under(work)
    assert not list((work / "runs").iterdir())
    assert not (work / "warm").exists() or not list((work / "warm").iterdir())


def test_prepared_repositories_can_be_dropped_and_are_bounded(tmp_path: Path, toy: ToyRepo) -> None:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    from vtforge.sandbox.local import LocalSandbox

    other = make_toy_repo(tmp_path / "other")
    box = LocalSandbox(TEST_LIMITS, work_dir=tmp_path / "lru", warm=True, prepared_cache_gb=1e-9)
    try:
        first = box.prepare(RepoSpec(toy.path, toy.base_commit))
        assert box.run(first, RunRequest(tests=["tests/test_basic.py::test_mul"])).status == "completed"
        assert box.warm is not None and first.key in box.warm.zygotes()
        second = box.prepare(RepoSpec(other.path, other.base_commit))
        assert first.key != second.key
        assert not first.cache_dir.exists() and second.cache_dir.exists()  # least recently used went
        assert first.key not in box.warm.zygotes()  # and its warm worker with it
        box.drop(second)
        assert not second.cache_dir.exists()
        again = box.prepare(RepoSpec(other.path, other.base_commit))
        assert again.key == second.key and again.cache_dir.exists()
        assert box.run(again, RunRequest(tests=["tests/test_basic.py::test_mul"])).status == "completed"
    finally:
        box.close()


@pytest.mark.docker
@pytest.mark.usefixtures("as_root")
def test_the_docker_backend_has_the_same_disk_quota(podman_url: str, tmp_path: Path, toy: ToyRepo) -> None:
    """Cold containers and a warm one write to host folders on a tmpfs of ``disk_mb``: filling it
    ends the run ``disk_quota``, and the next run in the same warm container starts empty."""
    from vtforge import constants as C
    from vtforge.sandbox.docker_backend import DockerSandbox

    for warm in (False, True):
        work = tmp_path / f"d{warm}"
        box = DockerSandbox(
            TEST_LIMITS, work_dir=work, image=C.SANDBOX_IMAGE, docker_host=podman_url, warm=warm, disk_mb=8
        )
        try:
            prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
            assert prepared.ok, prepared.setup_log
            result = box.run(prepared, RunRequest(command=["python3", "-c", FILL]))
            assert result.status == "disk_quota", (result.status, result.stderr_tail[-500:])
            again = box.run(prepared, RunRequest(tests=["tests/test_basic.py"]))
            assert again.status == "completed" and again.tests, (again.status, again.stderr_tail[-500:])
            if warm:
                assert box.warm is not None and box.warm.containers()  # the same container, kept
        finally:
            box.close()
        assert not mounts_under(work)
