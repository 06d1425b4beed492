"""Warm containers of the docker backend: the cold path's outcomes, its limits, and no container left.

The equivalence test runs the toy repository's candidates (gold, empty, wrong, garbage, the whole
suite, a command) and two demo-bank tasks' gold, empty and wrong patches through a cold docker
backend and a warm one, and requires the same status, exit code, applied tools and per-test
outcomes. The demo bank is built once per machine under ``~/.cache/vtforge/demo-bank``
(``VTFORGE_TEST_DEMO_BANK`` moves it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.conftest import TEST_LIMITS
from tests.sandbox.test_warm import candidates, outcome
from tests.sandbox.toyrepo import ToyRepo
from tests.support import require_service
from vtforge import constants as C
from vtforge.sandbox.api import Limits, PreparedRepo, RepoSpec, RunRequest, Sandbox
from vtforge.sandbox.docker_backend import DockerSandbox
from vtforge.sandbox.warm_container import OWNER_LABEL, WARM_LABEL

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def warm_docker(podman_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerSandbox]:
    box = DockerSandbox(
        TEST_LIMITS,
        work_dir=tmp_path_factory.mktemp("docker-warm"),
        image=C.SANDBOX_IMAGE,
        docker_host=podman_url,
        warm=True,
        warm_idle_s=120,
    )
    yield box
    box.close()


@pytest.fixture
def warm_toy(warm_docker: DockerSandbox, toy: ToyRepo) -> PreparedRepo:
    prepared = warm_docker.prepare(RepoSpec(toy.path, toy.base_commit))
    assert prepared.ok, prepared.setup_log
    return prepared


def labelled(podman_url: str, label: str, value: str | None = None) -> list[str]:
    """Ids of the engine's containers (running or not) carrying ``label`` (with ``value``)."""
    import docker

    client = docker.DockerClient(base_url=podman_url)
    try:
        wanted = f"{label}={value}" if value is not None else label
        return [c["Id"] for c in client.api.containers(all=True, filters={"label": wanted})]
    finally:
        client.close()


def wait_until(check, timeout_s: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return bool(check())


# --- outcomes -----------------------------------------------------------------------------------


def toy_requests(toy: ToyRepo) -> dict[str, RunRequest]:
    tests = [*toy.fail_to_pass, *toy.pass_to_pass]
    wrong = toy.gold_patch.replace("return a + b", "return a * b")
    return {
        "gold": RunRequest(patches=[toy.gold_patch, toy.test_patch], tests=tests),
        "empty": RunRequest(patches=[toy.test_patch], tests=tests),
        "wrong": RunRequest(patches=[wrong, toy.test_patch], tests=tests),
        "garbage": RunRequest(patches=["not a diff\n"], tests=tests),
        "suite": RunRequest(),
        "command": RunRequest(command=["sh", "-c", "ls /tmp /tmp/workspace; echo $HOME; exit 3"]),
        "env": RunRequest(tests=["tests/test_basic.py::test_mul"], env={"X_FLAG": "1"}),
    }


def test_warm_and_cold_container_outcomes_are_identical(
    docker_box: Sandbox, warm_docker: DockerSandbox, toy: ToyRepo, demo_bank: list
) -> None:
    spec = RepoSpec(toy.path, toy.base_commit)
    cold_repo, warm_repo = docker_box.prepare(spec), warm_docker.prepare(spec)
    requests = toy_requests(toy)
    cold = dict(zip(requests, docker_box.run_many(cold_repo, requests.values(), workers=2), strict=True))
    warm = dict(zip(requests, warm_docker.run_many(warm_repo, requests.values(), workers=2), strict=True))
    differences = [
        (n, outcome(cold[n]), outcome(warm[n])) for n in requests if outcome(cold[n]) != outcome(warm[n])
    ]
    assert cold["command"].stdout_tail == warm["command"].stdout_tail
    assert cold["gold"].status == "completed" and set(toy.fail_to_pass) <= cold["gold"].passed()
    assert set(toy.fail_to_pass) & cold["wrong"].failed()
    assert warm_docker.warm is not None and warm_repo.key in warm_docker.warm.containers()
    for task in demo_bank[:2]:
        spec = RepoSpec(Path(task.repo_dir), task.base_commit, task_id=task.instance_id)
        tests = [*task.fail_to_pass, *task.pass_to_pass]
        requests = {n: RunRequest(patches=p, tests=tests) for n, p in candidates(task).items()}
        cold_repo, warm_repo = docker_box.prepare(spec), warm_docker.prepare(spec)
        cold = dict(zip(requests, docker_box.run_many(cold_repo, requests.values(), workers=2), strict=True))
        warm = dict(zip(requests, warm_docker.run_many(warm_repo, requests.values(), workers=2), strict=True))
        differences += [
            (task.instance_id, n, outcome(cold[n]), outcome(warm[n]))
            for n in requests
            if outcome(cold[n]) != outcome(warm[n])
        ]
        assert cold["gold"].status == "completed" and set(task.fail_to_pass) <= cold["gold"].passed()
        assert not set(task.fail_to_pass) <= cold["wrong_source"].passed()
        warm_docker.drop(warm_repo)
    assert not differences, differences[:3]


@pytest.fixture(scope="module")
def demo_bank() -> list:
    from vtforge.config import load_config
    from vtforge.tasks.demo import ensure_demo_bank

    root = Path(os.environ.get("VTFORGE_TEST_DEMO_BANK", Path.home() / ".cache" / "vtforge" / "demo-bank"))
    root.mkdir(parents=True, exist_ok=True)
    toml = root / "vtcode.toml"
    if not toml.exists():
        toml.write_text('[forge.warehouse]\ndata_dir = ".forge"\n')
    try:
        tasks = list(ensure_demo_bank(load_config(toml)))
    except Exception as exc:  # no PyPI access for the sdists on this machine
        require_service(False, f"the demo bank ({type(exc).__name__}: {exc})")
        raise
    by_package: dict[str, object] = {}
    for task in tasks:  # two different packages
        by_package.setdefault(task.instance_id.split("__")[0], task)
    return list(by_package.values())


# --- isolation and limits -----------------------------------------------------------------------


def test_runs_share_a_container_but_never_files_or_processes(
    warm_docker: DockerSandbox, warm_toy: PreparedRepo
) -> None:
    assert warm_docker.warm is not None
    leave = RunRequest(
        command=["sh", "-c", "touch /tmp/workspace/toycalc/leak /tmp/leak /tmp/home/leak; sleep 300 &"]
    )
    look = RunRequest(
        command=[
            "sh",
            "-c",
            "ls /tmp/workspace/toycalc /tmp /tmp/home; "
            "cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -c 'sleep [3]00'",
        ]
    )
    assert warm_docker.run(warm_toy, leave).status == "completed"
    before = warm_docker.warm.containers()[warm_toy.key]
    seen = warm_docker.run(warm_toy, look)
    assert warm_docker.warm.containers()[warm_toy.key] == before  # the same container served both
    assert seen.status == "completed", seen.stderr_tail
    assert "leak" not in seen.stdout_tail
    assert seen.stdout_tail.strip().splitlines()[-1] == "0"  # the background process died with its run


def test_limits_hold_as_in_cold_runs_and_a_broken_container_is_replaced(
    docker_box: Sandbox, warm_docker: DockerSandbox, warm_toy: PreparedRepo
) -> None:
    assert warm_docker.warm is not None
    warm_docker.warm.drop(warm_toy.key)  # from here on, one container at a time
    warm_docker.run(warm_toy, RunRequest(command=["true"]))
    (first,) = warm_docker.warm.containers()[warm_toy.key]
    spin = warm_docker.run(warm_toy, RunRequest(command=["sh", "-c", "while :; do :; done"], timeout_s=2.0))
    assert spin.status == "timeout"
    hostile = {
        "hog": f"b = bytearray({10 * 256 << 20})",
        "bomb": "import os\nwhile True:\n    os.fork()\n",
        "big": "open('/tmp/big', 'wb').write(b'0' * 20_000_000)",
    }
    strict = Limits(cpus=1.0, memory_mb=256, pids=64, timeout_s=6.0, file_size_mb=16)
    statuses: dict[str, list[str]] = {}
    for box in (docker_box, warm_docker):
        saved, box.limits = box.limits, strict
        try:
            prepared = box.prepare(RepoSpec(warm_toy.spec.repo_dir, warm_toy.spec.base_commit))
            for name, code in hostile.items():
                statuses.setdefault(name, []).append(
                    box.run(prepared, RunRequest(command=["python3", "-c", code])).status
                )
        finally:
            box.limits = saved
    assert statuses["hog"] == ["oom", "oom"]
    assert statuses["big"] == ["denied", "denied"]
    assert statuses["bomb"][1] in ("denied", "killed", "timeout")
    after = warm_docker.run(warm_toy, RunRequest(tests=["tests/test_basic.py::test_mul"]))
    assert after.status == "completed" and after.passed() == {"tests/test_basic.py::test_mul"}
    assert first not in warm_docker.warm.containers()[warm_toy.key]  # the timed-out one was replaced
    assert first not in labelled(warm_docker.base_url or "", WARM_LABEL)


# --- lifetime -----------------------------------------------------------------------------------


def test_idle_and_closed_containers_are_removed(podman_url: str, tmp_path: Path, toy: ToyRepo) -> None:
    box = DockerSandbox(
        TEST_LIMITS, work_dir=tmp_path / "idle", docker_host=podman_url, warm=True, warm_idle_s=0.5
    )
    try:
        prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
        assert box.run(prepared, RunRequest(tests=["tests/test_basic.py::test_mul"])).status == "completed"
        assert box.warm is not None
        (used,) = box.warm.containers()[prepared.key]
        assert wait_until(lambda: used not in labelled(podman_url, WARM_LABEL, prepared.key))
        assert not box.warm.containers()
        assert box.run(prepared, RunRequest(command=["true"])).status == "completed"
    finally:
        box.close()
    box = DockerSandbox(TEST_LIMITS, work_dir=tmp_path / "close", docker_host=podman_url, warm=True)
    prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
    assert box.run(prepared, RunRequest(command=["true"])).status == "completed"
    assert box.warm is not None
    (used,) = box.warm.containers()[prepared.key]
    assert used in labelled(podman_url, WARM_LABEL, prepared.key)
    box.close()
    assert used not in labelled(podman_url, WARM_LABEL, prepared.key)


def orphan_parent(work: Path, toy: ToyRepo, podman_url: str, orphan_after_s: int) -> tuple[str, list[str]]:
    """A process that runs one warm candidate and is then killed with SIGKILL; its owner tag and
    the containers it had."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from tests.sandbox.conftest import TEST_LIMITS
        from vtforge.sandbox import warm_container
        from vtforge.sandbox.api import RepoSpec, RunRequest
        from vtforge.sandbox.docker_backend import DockerSandbox
        from vtforge.sandbox.rundir import owner_tag
        warm_container.ORPHAN_AFTER_S = {orphan_after_s}
        box = DockerSandbox(TEST_LIMITS, work_dir=Path({str(work)!r}), docker_host={podman_url!r}, warm=True,
                            warm_idle_s=600)
        prepared = box.prepare(RepoSpec(Path({str(toy.path)!r}), {toy.base_commit!r}))
        print(box.run(prepared, RunRequest(command=["true"])).status, owner_tag(), flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        status, tag = parent.stdout.readline().split()
        assert status == "completed"
        left = labelled(podman_url, OWNER_LABEL, tag)
        assert left
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    return tag, left


def test_containers_of_a_killed_parent_are_swept(podman_url: str, tmp_path: Path, toy: ToyRepo) -> None:
    work = tmp_path / "orphan"
    tag, _ = orphan_parent(work, toy, podman_url, orphan_after_s=600)
    assert labelled(podman_url, OWNER_LABEL, tag)  # nothing removed them: the parent had no say
    DockerSandbox(TEST_LIMITS, work_dir=work, docker_host=podman_url).close()  # a new backend sweeps
    assert not labelled(podman_url, OWNER_LABEL, tag)
    assert not (work / "warm" / tag).exists()


def test_a_container_whose_parent_died_stops_by_itself(podman_url: str, tmp_path: Path, toy: ToyRepo) -> None:
    tag, _ = orphan_parent(tmp_path / "self-stop", toy, podman_url, orphan_after_s=3)
    assert wait_until(lambda: not labelled(podman_url, OWNER_LABEL, tag), timeout_s=60)
