"""Warm workers of the local backend: the same outcomes as cold runs, and no worker left behind.

The equivalence test runs every demo-bank task's gold patch, an empty patch and two wrong patches
(one in the source, which makes the child import the repository again, one in a test file, which
keeps the zygote's modules) cold and warm, and requires the same status, exit code, applied tools
and per-test outcomes, failures rerun once as rewards rerun them. The demo bank is built once per
machine under ``~/.cache/vtforge/demo-bank`` (sdists from PyPI, cached; ``VTFORGE_TEST_DEMO_BANK``
moves it).
"""

from __future__ import annotations

import difflib
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
from tests.sandbox.toyrepo import ToyRepo, new_file_patch
from tests.support import require_service
from vtforge.sandbox.api import RepoSpec, RunRequest, RunResult, Sandbox

pytestmark = pytest.mark.bwrap

REPO = Path(__file__).resolve().parents[2]


def zygote_pids(marker: str) -> list[int]:
    """Processes whose command line names the warm worker and ``marker`` (a work folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "zygote.py" in cmdline and marker in cmdline:
            found.append(int(entry.name))
    return found


def outcome(result: RunResult) -> tuple:
    return (result.status, result.exit_code, tuple(result.applied_with), result.status_map())


# --- the demo bank ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_tasks() -> list:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    from vtforge.config import load_config
    from vtforge.tasks.demo import ensure_demo_bank

    root = Path(os.environ.get("VTFORGE_TEST_DEMO_BANK", Path.home() / ".cache" / "vtforge" / "demo-bank"))
    root.mkdir(parents=True, exist_ok=True)
    toml = root / "vtcode.toml"
    if not toml.exists():
        toml.write_text('[forge.warehouse]\ndata_dir = ".forge"\n')
    try:
        return list(ensure_demo_bank(load_config(toml)))
    except Exception as exc:  # no PyPI access for the sdists on this machine
        require_service(False, f"the demo bank ({type(exc).__name__}: {exc})")
        raise


def _source_file(patch: str) -> str:
    from vtforge.sandbox.patches import files_in_patch

    return files_in_patch(patch)[0]


def _comment_patch(repo: Path, commit: str, path: str, comment: str) -> str:
    """A patch that adds one comment line at the top of ``path``: applies, fixes nothing."""
    old = subprocess.run(
        ["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True, check=True
    ).stdout
    new = f"# {comment}\n" + old
    diff = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=3
    )
    return f"diff --git a/{path} b/{path}\n" + "".join(diff)


def candidates(task) -> dict[str, list[str]]:
    """gold, empty, wrong in the source, wrong in a test file (each with the task's test patch)."""
    repo, commit = Path(task.repo_dir), task.base_commit
    f2p = list(task.fail_to_pass)
    test_file = f2p[0].split("::", 1)[0]
    tail = [task.test_patch] if task.test_patch else []
    return {
        "gold": [task.patch, *tail],
        "empty": tail,
        "wrong_source": [_comment_patch(repo, commit, _source_file(task.patch), "not a fix"), *tail],
        "wrong_test": [_comment_patch(repo, commit, test_file, "still failing"), *tail],
    }


def test_warm_and_cold_outcomes_are_identical_on_every_demo_task(
    demo_tasks: list, local_box: Sandbox, warm_box: Sandbox
) -> None:
    assert len(demo_tasks) >= 30
    differences = []
    warm_runs = 0
    for task in demo_tasks:
        spec = RepoSpec(Path(task.repo_dir), task.base_commit, task_id=task.instance_id)
        tests = [*task.fail_to_pass, *task.pass_to_pass]
        requests = {
            name: RunRequest(patches=patches, tests=tests, label=name, flaky_reruns=1)
            for name, patches in candidates(task).items()
        }
        cold_repo, warm_repo = local_box.prepare(spec), warm_box.prepare(spec)
        cold = dict(zip(requests, local_box.run_many(cold_repo, requests.values(), workers=2), strict=True))
        warm = dict(zip(requests, warm_box.run_many(warm_repo, requests.values(), workers=2), strict=True))
        assert warm_box.warm is not None and warm_box.warm.refused(warm_repo.key) is None
        warm_runs += len(warm)
        for name in requests:
            if outcome(cold[name]) != outcome(warm[name]):
                differences.append((task.instance_id, name, outcome(cold[name]), outcome(warm[name])))
        assert cold["gold"].status == "completed" and set(cold["gold"].passed()) >= set(task.fail_to_pass)
        assert not set(task.fail_to_pass) <= cold["wrong_source"].passed()
        warm_box.warm.drop(warm_repo.key)  # one zygote at a time on a small machine
    assert not differences, differences[:3]
    assert warm_runs == 4 * len(demo_tasks)


# --- the toy repository: features and lifetime --------------------------------------------------


def test_a_warm_run_imports_the_patched_module_not_the_zygotes(warm_box: Sandbox, toy: ToyRepo) -> None:
    """The zygote imported ``toycalc`` unpatched; a child whose patch fixes it sees the fix."""
    prepared = warm_box.prepare(RepoSpec(toy.path, toy.base_commit))
    request = RunRequest(patches=[toy.gold_patch, toy.test_patch], tests=toy.fail_to_pass)
    before = warm_box.run(prepared, RunRequest(patches=[toy.test_patch], tests=toy.fail_to_pass))
    after = warm_box.run(prepared, request)
    assert warm_box.warm is not None and "toycalc" in warm_box.warm.zygotes()[prepared.key].info["repository"]
    assert before.status == after.status == "completed"
    assert set(toy.fail_to_pass) & before.failed() and set(toy.fail_to_pass) <= after.passed()
    again = warm_box.run(prepared, RunRequest(patches=[toy.test_patch], tests=toy.fail_to_pass))
    assert outcome(again) == outcome(before)  # the fix stayed in its own child


def test_the_zygote_rewrites_a_test_file_once_per_content(warm_box: Sandbox, toy: ToyRepo) -> None:
    """Runs of the same test file share the zygote's rewrite; a patched test file gets its own."""
    prepared = warm_box.prepare(RepoSpec(toy.path, toy.base_commit))
    plain = RunRequest(tests=["tests/test_basic.py::test_mul"])
    first, second = warm_box.run(prepared, plain), warm_box.run(prepared, plain)
    assert first.status == "completed" and outcome(first) == outcome(second)
    assert warm_box.warm is not None
    log = warm_box.warm.zygotes()[prepared.key].log
    assert log.read_text().count("rewrote /tmp/workspace/tests/test_basic.py") == 1
    patched = warm_box.run(prepared, RunRequest(patches=[toy.test_patch], tests=toy.fail_to_pass))
    assert patched.status == "completed" and set(toy.fail_to_pass) & patched.failed()
    assert log.read_text().count("rewrote /tmp/workspace/tests/") == 2


def test_runs_that_need_a_new_interpreter_run_cold(warm_box: Sandbox, toy: ToyRepo) -> None:
    prepared = warm_box.prepare(RepoSpec(toy.path, toy.base_commit))
    result = warm_box.run(prepared, RunRequest(command=["sh", "-c", "echo $PYTHONHASHSEED"]))
    assert result.status == "completed" and result.stdout_tail.strip() == "0"
    env = warm_box.run(prepared, RunRequest(tests=["tests/test_basic.py::test_mul"], env={"X_FLAG": "1"}))
    assert env.status == "completed" and env.status_map() == {"tests/test_basic.py::test_mul": "PASSED"}


def test_idle_workers_are_stopped(tmp_path: Path, toy: ToyRepo) -> None:
    from vtforge.sandbox.local import LocalSandbox

    box = LocalSandbox(TEST_LIMITS, work_dir=tmp_path / "idle", warm=True, warm_idle_s=0.5)
    try:
        prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
        assert box.run(prepared, RunRequest(tests=["tests/test_basic.py::test_mul"])).status == "completed"
        assert zygote_pids(str(tmp_path / "idle"))
        deadline = time.monotonic() + 30
        while zygote_pids(str(tmp_path / "idle")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not zygote_pids(str(tmp_path / "idle"))
        assert box.warm is not None and not box.warm.zygotes()
        assert box.run(prepared, RunRequest(tests=["tests/test_basic.py::test_mul"])).status == "completed"
    finally:
        box.close()
    assert not zygote_pids(str(tmp_path / "idle"))


def test_workers_never_outlive_their_parent(tmp_path: Path, toy: ToyRepo) -> None:
    """A parent killed with SIGKILL (no clean-up at all) takes its zygote and runs with it."""
    work = tmp_path / "orphan"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from tests.sandbox.conftest import TEST_LIMITS
        from vtforge.sandbox.api import RepoSpec, RunRequest
        from vtforge.sandbox.local import LocalSandbox
        box = LocalSandbox(TEST_LIMITS, work_dir=Path({str(work)!r}), warm=True, warm_idle_s=600)
        prepared = box.prepare(RepoSpec(Path({str(toy.path)!r}), {toy.base_commit!r}))
        print(box.run(prepared, RunRequest(tests=["tests/test_basic.py::test_mul"])).status, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "completed"
        assert zygote_pids(str(work))
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30
    while zygote_pids(str(work)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not zygote_pids(str(work))
    from vtforge.sandbox.local import LocalSandbox
    from vtforge.sandbox.rundir import mounts_under

    LocalSandbox(TEST_LIMITS, work_dir=work).close()  # sweeps what the killed parent left
    assert not mounts_under(work) and not list((work / "warm").iterdir())


def _ready_spare(box: Sandbox, key: str, timeout_s: float = 30.0):
    assert box.warm is not None
    zygote = box.warm.zygotes()[key]
    deadline = time.monotonic() + timeout_s
    while zygote._spare is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return zygote


def test_a_run_takes_a_spare_child_already_in_its_cgroup(warm_box: Sandbox, toy: ToyRepo) -> None:
    """As root, the next run's child is forked and moved into its cgroup while a run executes; a
    spare that died before its run is replaced by an ordinary fork."""
    require_service(os.geteuid() == 0, "root (per-run cgroups)")
    prepared = warm_box.prepare(RepoSpec(toy.path, toy.base_commit))
    request = RunRequest(patches=[toy.test_patch], tests=toy.fail_to_pass)
    first = warm_box.run(prepared, request)
    zygote = _ready_spare(warm_box, prepared.key)
    spare, used = zygote._spare, zygote.spares_used
    assert spare is not None and spare.pid in spare.group.pids()
    second = warm_box.run(prepared, request)
    assert zygote.spares_used == used + 1
    assert outcome(second) == outcome(first) and set(toy.fail_to_pass) & second.failed()
    assert second.cpu_s is not None and second.max_rss_mb is not None  # measured in the spare's cgroup
    dead = _ready_spare(warm_box, prepared.key)._spare
    assert dead is not None
    os.kill(dead.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not dead.pending.done.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    third = warm_box.run(prepared, request)
    assert outcome(third) == outcome(first) and zygote.spares_used == used + 1


COLLECTED_ONCE_TEST = new_file_patch(
    "tests/test_once.py",
    textwrap.dedent(
        """\
        import os

        HERE = os.path.dirname(__file__)
        with open(os.path.join(HERE, ".imports"), "a") as log:
            log.write("x")


        def test_passes_on_a_rerun_that_did_not_import_again():
            marker = os.path.join(HERE, ".ran-once")
            if not os.path.exists(marker):
                open(marker, "w").close()
                raise AssertionError("fails the first time")
            with open(os.path.join(HERE, ".imports")) as log:
                count = len(log.read())
            assert count == 1, f"imported {count} times"
        """
    ),
)


def test_a_warm_rerun_is_forked_from_the_collected_first_session(
    local_box: Sandbox, warm_box: Sandbox, toy: ToyRepo
) -> None:
    """A failure's rerun starts from the run's first session as collected: the test module is not
    imported again (a new session imports it again, as the cold run shows), and the rerun reports
    on its own."""
    name = "tests/test_once.py::test_passes_on_a_rerun_that_did_not_import_again"
    tests = [name, "tests/test_basic.py::test_mul"]
    request = RunRequest(patches=[COLLECTED_ONCE_TEST], tests=tests, flaky_reruns=1)
    spec = RepoSpec(toy.path, toy.base_commit)
    warm = warm_box.run(warm_box.prepare(spec), request)
    cold = local_box.run(local_box.prepare(spec), request)
    assert warm.status == cold.status == "completed"
    assert (warm.tests[name].status, warm.tests[name].flaky, warm.tests[name].reruns) == ("PASSED", True, 1)
    assert (cold.tests[name].status, cold.tests[name].flaky, cold.tests[name].reruns) == ("FAILED", False, 1)
    assert warm.exit_code == 0 and cold.exit_code == 1
    assert warm.status_map()["tests/test_basic.py::test_mul"] == "PASSED"


def test_zygotes_of_one_interpreter_are_forked_from_its_template(warm_box: Sandbox, toy: ToyRepo) -> None:
    """Two prepared repositories (two commits) get zygotes forked from one template interpreter,
    which imported pytest once; neither starts an interpreter of its own."""
    request = RunRequest(patches=[toy.gold_patch, toy.test_patch], tests=toy.fail_to_pass)
    zygotes = []
    for commit in (toy.base_commit, "HEAD"):
        prepared = warm_box.prepare(RepoSpec(toy.path, commit))
        result = warm_box.run(prepared, request)
        assert result.status == "completed" and not result.failed()
        assert warm_box.warm is not None
        zygotes.append(warm_box.warm.zygotes()[prepared.key])
    first, second = zygotes
    assert first is not second and first.template is not None and first.template is second.template
    assert first.proc is None and second.proc is None and first.pid != second.pid
    assert first.info["repository"] == second.info["repository"] == ["toycalc"]


def tmp_view_test(python: str) -> str:
    """A test file that passes when /tmp holds the sandbox's folders (plus the top folder of an
    interpreter that lives under /tmp, bound in as for a cold run) and nothing an earlier run left."""
    from vtforge.sandbox.local import python_prefixes

    tops = {Path(p).relative_to("/tmp").parts[0] for p in python_prefixes(python) if p.startswith("/tmp/")}
    layout = sorted({".vtforge", "base", "env", "home", "out", "tmp", "workspace", *tops})
    return new_file_patch(
        "tests/test_tmp_view.py",
        textwrap.dedent(
            f"""\
            import os


            def test_tmp_is_the_runs_own():
                assert not os.path.exists("/tmp/left-by-an-earlier-run")
                open("/tmp/left-by-an-earlier-run", "w").close()
                assert sorted(os.listdir("/tmp")) == sorted({layout!r} + ["left-by-an-earlier-run"])
            """
        ),
    )


def test_a_warm_run_has_a_tmp_of_its_own_as_a_cold_run_has(
    local_box: Sandbox, warm_box: Sandbox, toy: ToyRepo
) -> None:
    """A warm run's /tmp is its own folder, as a cold run's is: what one run leaves there is gone
    in the next, and nothing of the zygote's (its runs' folders, other repositories) shows."""
    name = "tests/test_tmp_view.py::test_tmp_is_the_runs_own"
    request = RunRequest(patches=[tmp_view_test(sys.executable)], tests=[name])
    spec = RepoSpec(toy.path, toy.base_commit)
    prepared = warm_box.prepare(spec)
    runs = [warm_box.run(prepared, request) for _ in range(2)]
    runs.append(local_box.run(local_box.prepare(spec), request))
    assert [r.status_map() for r in runs] == [{name: "PASSED"}] * 3, runs[0].stdout_tail


SHADOWING_MODULE = '''"""The repository's own module named like pytest's ini parser, which shadows it."""


class IniConfig:
    pass


class ParseError(Exception):
    pass


class SectionWrapper:
    pass


OWN = True
'''


def test_a_repository_that_shadows_a_template_module_gets_a_zygote_of_its_own(
    local_box: Sandbox, warm_box: Sandbox, tmp_path: Path
) -> None:
    """A checkout with a top-level ``iniconfig.py`` imports its own in a cold run (the workspace
    comes first on ``sys.path``); a zygote forked from the template would keep the one the
    template imported, so this repository's zygote starts on its own, and the outcome is the same."""
    from vtforge.gitrepo import commit_all, init_repo

    repo = tmp_path / "shadowing"
    (repo / "tests").mkdir(parents=True)
    (repo / "iniconfig.py").write_text(SHADOWING_MODULE)
    test = "import iniconfig\n\n\ndef test_own():\n    assert iniconfig.OWN\n"
    (repo / "tests" / "test_own.py").write_text(test)
    init_repo(repo)
    spec = RepoSpec(repo, commit_all(repo, "a module named like an installed one"))
    request = RunRequest(tests=["tests/test_own.py::test_own"])
    prepared = warm_box.prepare(spec)
    warm = warm_box.run(prepared, request)
    cold = local_box.run(local_box.prepare(spec), request)
    assert outcome(warm) == outcome(cold) and warm.status_map() == {"tests/test_own.py::test_own": "PASSED"}
    assert warm_box.warm is not None
    zygote = warm_box.warm.zygotes()[prepared.key]
    assert zygote.template is None and zygote.proc is not None
