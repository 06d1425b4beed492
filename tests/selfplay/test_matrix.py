"""The matrix runner on a real repository: one session per patch, broken and hanging tests contained."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.sandbox.toyrepo import ToyRepo
from tests.support import require_service
from vtforge.sandbox.api import Limits
from vtforge.selfplay.matrix import MatrixRunner, NaiveRunner, generated_test
from vtforge.selfplay.task import RepoView, SelfplayTask

pytestmark = [pytest.mark.slow, pytest.mark.bwrap]

BASIC = "tests/test_basic.py"


def _test(view: RepoView, test_id: str, body: str, name: str = "test_new"):
    content = (view.read(BASIC) or "") + f"\n\n{body}"
    return generated_test(test_id, BASIC, [name], content)


def test_matrix_rows_poison_and_collection_errors(
    tmp_path: Path, toy: ToyRepo, toy_task: SelfplayTask
) -> None:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    from vtforge.sandbox.local import LocalSandbox

    box = LocalSandbox(Limits(memory_mb=1024, timeout_s=20.0), work_dir=tmp_path / "work")
    box.concurrency = 2
    view = RepoView(toy.path, toy.base_commit)
    good = _test(
        view, "good000000", "def test_new():\n    from toycalc import add\n    assert add(2, 3) == 5\n"
    )
    passes_on_base = _test(view, "base000000", "def test_new():\n    assert mul(2, 2) == 4\n")
    broken = generated_test(
        "broken0000", BASIC, ["test_new"], "import no_such_module_here\n\ndef test_new():\n    assert True\n"
    )
    hangs = _test(view, "hang000000", "def test_new():\n    while True:\n        pass\n")
    tests = [good, passes_on_base, broken, hangs]
    wrong = toy.gold_patch.replace("return a + b", "return a * b")

    runner = MatrixRunner(box)
    prepared = box.prepare(toy_task.repo_spec())
    matrix = runner.base(prepared, toy_task, tests, view.tree_set)
    assert matrix.poison == {"hang000000"}  # isolated after the base session timed out
    assert matrix.valid == {"good000000", "broken0000"}  # fail before any fix; the other passes
    assert "tests/test_basic.py::test_mul" in matrix.regression
    assert not any(n.startswith("tests/test_add.py") for n in matrix.regression)  # hidden new file

    runner.rows(prepared, toy_task, matrix, {"fix": toy.gold_patch, "wrong": wrong})
    assert matrix.runs >= 1 + 1 + 3  # base, isolation, two patches and the gold patch
    gold_row, wrong_row = matrix.rows["fix"], matrix.rows["wrong"]
    assert gold_row.passes["good000000"] and not gold_row.passes["broken0000"]
    assert gold_row.resolved is True and wrong_row.resolved is False
    assert not wrong_row.passes["good000000"]
    assert matrix.informative() == {"good000000"}
    assert matrix.pass_rate("fix") == 0.5 and matrix.regression_safety("fix") == 1.0
    assert wrong_row.failing_task_tests and matrix.gold is not None and matrix.gold.resolved

    naive = NaiveRunner(box)
    assert naive.pair(prepared, toy_task, toy.gold_patch, good) is True
    assert naive.pair(prepared, toy_task, wrong, good) is False


def test_a_test_that_fills_the_disk_quota_is_isolated_and_poisoned(
    tmp_path: Path, toy: ToyRepo, toy_task: SelfplayTask
) -> None:
    """A generated test that fills the run's disk at import leaves pytest unable to report: the
    session ends ``disk_quota`` with the statuses missing, so each test runs alone again."""
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    require_service(os.geteuid() == 0, "root (mounts for the disk quota)")
    from vtforge.sandbox.local import LocalSandbox

    box = LocalSandbox(Limits(memory_mb=1024, timeout_s=30.0), work_dir=tmp_path / "work", disk_mb=8)
    try:
        view = RepoView(toy.path, toy.base_commit)
        good = _test(
            view, "good000000", "def test_new():\n    from toycalc import add\n    assert add(2, 3) == 5\n"
        )
        fills = generated_test(
            "fills00000",
            "tests/test_fills.py",
            ["test_new"],
            "import pathlib, tempfile\n"
            "_d = pathlib.Path(tempfile.gettempdir())\n"
            "try:\n"
            "    for _i in range(100000):\n"
            "        (_d / f'fill{_i}').write_text('x' * 4096)\n"
            "except OSError:\n"
            "    pass\n\n"
            "def test_new():\n    assert False\n",
        )
        runner = MatrixRunner(box)
        prepared = box.prepare(toy_task.repo_spec())
        matrix = runner.base(prepared, toy_task, [good, fills], view.tree_set)
        assert matrix.poison == {"fills00000"}
        assert matrix.valid == {"good000000"}
    finally:
        box.close()
