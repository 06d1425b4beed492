"""A candidate's life on both backends: copy, patch, one pytest session, per-test outcomes."""

from __future__ import annotations

import pytest

from tests.sandbox.toyrepo import ToyRepo
from vtforge.sandbox.api import PreparedRepo, RepoSpec, RunRequest, Sandbox


def test_whole_suite_gives_the_passing_baseline(box: Sandbox, prepared: PreparedRepo, toy: ToyRepo) -> None:
    result = box.run(prepared, RunRequest())
    assert result.status == "completed", result.error
    statuses = result.status_map()
    assert statuses["tests/test_basic.py::test_mul"] == "PASSED"
    assert statuses["tests/test_basic.py::test_clamp[11-10]"] == "PASSED"
    assert statuses["tests/test_basic.py::test_skipped"] == "SKIPPED"
    assert statuses["tests/test_basic.py::test_known_failure"] == "XFAIL"
    assert not any(name.startswith("tests/test_add.py") for name in statuses)
    assert result.exit_code == 0
    assert result.backend == box.name
    assert result.command and result.limits.memory_mb == 512


def test_gold_and_test_patch_turn_fail_to_pass(box: Sandbox, prepared: PreparedRepo, toy: ToyRepo) -> None:
    before = box.run(prepared, RunRequest(patches=[toy.test_patch], tests=toy.fail_to_pass))
    assert before.status == "completed"
    assert {before.tests[t].status for t in toy.fail_to_pass} == {"FAILED"}
    after = box.run(
        prepared,
        RunRequest(patches=[toy.gold_patch, toy.test_patch], tests=toy.fail_to_pass + toy.pass_to_pass),
    )
    assert after.status == "completed", after.error
    assert after.applied_with == ["git apply", "git apply"]
    assert set(toy.fail_to_pass + toy.pass_to_pass) <= after.passed()
    assert set(after.tests) == set(toy.fail_to_pass + toy.pass_to_pass)  # only what was asked


def test_candidates_do_not_see_each_other(box: Sandbox, prepared: PreparedRepo, toy: ToyRepo) -> None:
    """The gold patch of one run must not leak into the next copy of the same prepared checkout."""
    fixed = box.run(
        prepared,
        RunRequest(patches=[toy.gold_patch], command=["grep", "-q", "return a + b", "toycalc/__init__.py"]),
    )
    assert fixed.status == "completed" and fixed.exit_code == 0  # the first run did apply the fix
    again = box.run(prepared, RunRequest(command=["grep", "-q", "return a - b", "toycalc/__init__.py"]))
    assert again.status == "completed" and again.exit_code == 0


def test_unknown_test_ids_are_missing_not_fatal(box: Sandbox, prepared: PreparedRepo) -> None:
    result = box.run(
        prepared,
        RunRequest(
            tests=[
                "tests/test_basic.py::test_mul",
                "tests/test_basic.py::nope",
                "tests/test_missing.py::test_x",
            ]
        ),
    )
    assert result.status == "completed"
    assert result.status_map() == {"tests/test_basic.py::test_mul": "PASSED"}


def test_a_patch_that_does_not_apply_is_a_result(box: Sandbox, prepared: PreparedRepo, toy: ToyRepo) -> None:
    broken = toy.gold_patch.replace("return a - b", "return a * b * c")
    result = box.run(prepared, RunRequest(patches=[toy.test_patch, broken]))
    assert result.status == "patch_apply_failed"
    assert result.apply_errors and "git apply" in result.apply_errors[0]
    assert result.applied_with == ["git apply"]
    assert not result.patch_applied


def test_fuzzy_patch_falls_back_to_patch(box: Sandbox, prepared: PreparedRepo, toy: ToyRepo) -> None:
    """Stale context lines: git apply refuses, ``patch --fuzz`` applies."""
    stale = toy.gold_patch.replace(
        '"""toycalc: a tiny package with one bug (add subtracts)."""', '"""toycalc: an older docstring."""'
    )
    stale = stale.replace(" \n def add(a, b):", " \n def add(a, b):")
    lines = stale.splitlines()
    # change a context line right next to the hunk so only a fuzzy match works
    for i, line in enumerate(lines):
        if line == " def add(a, b):":
            lines[i] = " def add(a,  b):"
    result = box.run(
        prepared,
        RunRequest(patches=["\n".join(lines) + "\n", toy.test_patch], tests=["tests/test_add.py::test_add"]),
    )
    assert result.status == "completed", result.apply_errors
    assert result.applied_with == ["patch --fuzz", "git apply"]
    assert result.tests["tests/test_add.py::test_add"].status == "PASSED"


FLAKY_TEST = """diff --git a/tests/test_flaky.py b/tests/test_flaky.py
new file mode 100644
--- /dev/null
+++ b/tests/test_flaky.py
@@ -0,0 +1,9 @@
+import os
+
+
+def test_flaky():
+    marker = os.path.join(os.path.dirname(__file__), ".ran-once")
+    if not os.path.exists(marker):
+        open(marker, "w").close()
+        raise AssertionError("fails the first time only")
+    assert True
"""


def test_flaky_tests_are_rerun_and_marked(box: Sandbox, prepared: PreparedRepo) -> None:
    result = box.run(
        prepared,
        RunRequest(
            patches=[FLAKY_TEST],
            flaky_reruns=2,
            tests=["tests/test_flaky.py::test_flaky", "tests/test_basic.py::test_mul"],
        ),
    )
    assert result.status == "completed"
    flaky = result.tests["tests/test_flaky.py::test_flaky"]
    assert (flaky.status, flaky.flaky, flaky.reruns) == ("PASSED", True, 1)
    assert not result.tests["tests/test_basic.py::test_mul"].flaky
    assert result.exit_code == 0


def test_collection_crash_is_invalid(box: Sandbox, prepared: PreparedRepo) -> None:
    conftest = (
        "diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n"
        "@@ -0,0 +1 @@\n+raise RuntimeError('broken conftest')\n"
    )
    result = box.run(prepared, RunRequest(patches=[conftest]))
    assert result.status == "invalid"
    assert result.exit_code not in (0, 1)
    assert not result.tests


def test_run_many_keeps_order(box: Sandbox, prepared: PreparedRepo, toy: ToyRepo) -> None:
    requests = [
        RunRequest(
            patches=[toy.test_patch] + ([toy.gold_patch] if i % 2 else []),
            tests=["tests/test_add.py::test_add"],
            label=str(i),
        )
        for i in range(4)
    ]
    results = list(box.run_many(prepared, requests, workers=2))
    assert [r.label for r in results] == ["0", "1", "2", "3"]
    outcomes = [(r.status, r.error, sorted(r.tests)) for r in results]  # shown if a run lost its test
    assert all("tests/test_add.py::test_add" in r.tests for r in results), outcomes
    assert [r.tests["tests/test_add.py::test_add"].status for r in results] == ["FAILED", "PASSED"] * 2


def test_setup_runs_once_and_its_files_reach_every_candidate(box: Sandbox, toy: ToyRepo) -> None:
    spec = RepoSpec(
        toy.path,
        toy.base_commit,
        setup_commands=("echo prepared > SETUP_DONE", 'echo x >> "$VTFORGE_ENV/count"'),
    )
    first = box.prepare(spec)
    assert first.ok, first.setup_log
    second = box.prepare(spec)
    assert second.key == first.key and second.setup_s == first.setup_s
    assert (first.env_dir / "count").read_text() == "x\n"  # set-up ran exactly once
    result = box.run(second, RunRequest(command=["sh", "-c", 'cat SETUP_DONE && cat "$VTFORGE_ENV/count"']))
    assert result.status == "completed" and "prepared" in result.stdout_tail


def test_failed_setup_is_an_infra_failure(box: Sandbox, toy: ToyRepo) -> None:
    repo = box.prepare(RepoSpec(toy.path, toy.base_commit, setup_commands=("exit 3",)))
    assert not repo.ok and repo.setup_status == "infra_failure"
    result = box.run(repo, RunRequest())
    assert result.status == "infra_failure" and result.infra_failure


def test_unknown_commit_is_an_infra_failure(box: Sandbox, toy: ToyRepo) -> None:
    repo = box.prepare(RepoSpec(toy.path, "0" * 40))
    assert repo.setup_status == "infra_failure" and "cannot resolve" in repo.setup_log


def test_run_records_what_ran(box: Sandbox, prepared: PreparedRepo) -> None:
    result = box.run(prepared, RunRequest(tests=["tests/test_basic.py::test_mul"]))
    payload = result.to_event_payload(execution_id="e1", patch_id="p1")
    from vtforge.schemas import new_event
    from vtforge.schemas.catalog import default_catalog

    event = new_event("execution_result", payload, producer="vtforge.sandbox.test", key="e1")
    default_catalog().current("execution_result")  # the schema exists
    assert event["limits"]["memory_mb"] == "512"
    assert payload["backend"] == box.name and payload["command"]
    assert payload["duration_s"] > 0 and payload["exit_code"] == 0
    if box.name == "docker":
        assert payload["image"] and payload["image_digest"]


@pytest.mark.parametrize("bad", [{"tests": ["a"], "command": ["true"]}, {"patches": "diff"}])
def test_request_misuse_raises(bad: dict) -> None:
    with pytest.raises(ValueError):
        RunRequest(**bad)


def test_a_virtualenv_made_at_setup_runs_the_candidates(box: Sandbox, toy: ToyRepo) -> None:
    make_env = '"${PYTHON:-python3}" -m venv --without-pip "$VTFORGE_ENV"'
    spec = RepoSpec(toy.path, toy.base_commit, setup_commands=(make_env,), python="/tmp/env/bin/python")
    repo = box.prepare(spec)
    assert repo.ok, repo.setup_log
    result = box.run(repo, RunRequest(command=["python", "-c", "import sys; print('prefix=' + sys.prefix)"]))
    assert result.status == "completed", result.stderr_tail
    assert "prefix=/tmp/env" in result.stdout_tail


def test_reset_before_undoes_edits_to_test_files(box: Sandbox, prepared: PreparedRepo, toy: ToyRepo) -> None:
    """A candidate that rewrites the tests cannot keep its version once the test patch resets them."""
    from vtforge.sandbox.patches import files_in_patch

    tamper = (
        "diff --git a/tests/test_add.py b/tests/test_add.py\nnew file mode 100644\n--- /dev/null\n"
        "+++ b/tests/test_add.py\n@@ -0,0 +1,2 @@\n+def test_add():\n+    assert True\n"
        "diff --git a/tests/test_basic.py b/tests/test_basic.py\n--- a/tests/test_basic.py\n"
        "+++ b/tests/test_basic.py\n@@ -5,3 +5,3 @@ from toycalc import clamp, mul\n"
        " def test_mul():\n-    assert mul(3, 4) == 12\n+    assert mul(3, 4) == 12 or True\n \n"
    )
    paths = [*files_in_patch(toy.test_patch), "tests/test_basic.py"]
    result = box.run(
        prepared,
        RunRequest(patches=[tamper, toy.test_patch], reset_before={1: paths}, tests=toy.fail_to_pass),
    )
    assert result.status == "completed", result.apply_errors
    assert {result.tests[t].status for t in toy.fail_to_pass} == {"FAILED"}
    check = box.run(
        prepared,
        RunRequest(
            patches=[tamper],
            reset_before={1: ["tests/test_basic.py"]},
            command=["grep", "-c", "or True", "tests/test_basic.py"],
        ),
    )
    assert check.exit_code == 0  # no patch 1: nothing was reset


def test_files_in_patch(toy: ToyRepo) -> None:
    from vtforge.sandbox.patches import files_in_patch

    assert files_in_patch(toy.test_patch) == ["tests/test_add.py"]
    assert files_in_patch(toy.gold_patch) == ["toycalc/__init__.py"]
    renamed = "diff --git a/old.py b/new.py\nsimilarity index 90%\nrename from old.py\nrename to new.py\n"
    assert files_in_patch(renamed) == ["old.py", "new.py"]
    assert files_in_patch("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n") == ["x.py"]


def test_local_runs_an_interpreter_that_lives_under_tmp(local_box: Sandbox, toy: ToyRepo) -> None:
    """The run folder replaces /tmp inside the sandbox; a venv in /tmp/… must still be visible
    (CI and users clone into /tmp, and the project's own venv is then there)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="vtforge-venv-", dir="/tmp") as folder:
        venv = Path(folder) / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True
        )
        python = str(venv / "bin" / "python")
        if subprocess.run([python, "-c", "import pytest"], capture_output=True).returncode != 0:
            pytest.skip("the base interpreter has no pytest to share with a venv")
        repo = local_box.prepare(RepoSpec(toy.path, toy.base_commit, python=python))
        assert repo.ok, repo.setup_log
        result = local_box.run(repo, RunRequest())
        assert result.status == "completed", result.error
        assert result.status_map()["tests/test_basic.py::test_mul"] == "PASSED"
