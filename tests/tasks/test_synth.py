"""Synthesis on a real (tiny) package through the sandbox: validated, verified, deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tasks.toypkg import TOY_NAME, TOY_VERSION
from vtforge import gitrepo
from vtforge.config import load_config
from vtforge.tasks.synth.pipeline import TASK_TAG, synthesize
from vtforge.tasks.validate import verify_task

pytestmark = pytest.mark.slow


def run(cfg, box, cache: Path, seed: int):
    return synthesize(cfg, TOY_NAME, TOY_VERSION, max_tasks=3, seed=seed, box=box, sdist_cache=cache)


def test_synthesised_bugs_are_verified_and_deterministic(workspace, task_box, toy_cache, tmp_path) -> None:
    cfg = load_config()
    report = run(cfg, task_box, toy_cache, seed=7)
    assert len(report.tasks) == 3
    assert report.baseline_passed == report.baseline_tests == 11
    for task in report.tasks:
        assert task.source == "synth" and task.test_patch == "" and task.split == "train"
        assert task.fail_to_pass and task.pass_to_pass
        assert not set(task.fail_to_pass) & set(task.pass_to_pass)
        mutation = task.provenance["mutation"]
        # the statement describes behaviour, never the edit: not its file, line or kind
        assert mutation["file"] not in task.problem_statement
        assert f":{mutation['line']}" not in task.problem_statement
        assert mutation["kind"] not in task.problem_statement
        assert task.fail_to_pass[0] in task.problem_statement
        assert task.provenance["origin"] == f"pypi:{TOY_NAME}=={TOY_VERSION}"
        assert task.provenance["license"] == "MIT"
        repo = Path(task.repo_dir)
        assert gitrepo.git(repo, "rev-parse", TASK_TAG + task.instance_id).strip() == task.base_commit
        assert gitrepo.diff(repo, task.base_commit, "vtforge/pristine") == task.patch
        verdict = verify_task(task_box, task)
        assert verdict.gold_resolved and not verdict.empty_resolved, verdict
    functions = [t.provenance["mutation"]["function"] for t in report.tasks]
    assert len(set(functions)) == len(functions)  # one bug per function

    # the same seed in a fresh data dir gives the very same tasks
    other = tmp_path / "second"
    other.mkdir()
    (other / "vtcode.toml").write_text('[forge.warehouse]\ndata_dir = ".forge"\n')
    again = run(load_config(cwd=other), task_box, toy_cache, seed=7)

    def strip(tasks):
        return [t.replace(repo_dir="").to_swebench() for t in tasks]

    assert strip(again.tasks) == strip(report.tasks)


def test_bugs_from_a_real_pypi_package_verify(workspace, task_box) -> None:
    """The demo's first package, for real: sdist from PyPI (cached), 2 bugs, each verified."""
    from tests.support import require_service
    from vtforge.tasks.synth.sdist import SdistError, download_sdist

    try:
        download_sdist("inflection", "0.5.1")
    except SdistError as exc:
        require_service(False, f"PyPI access for sdists ({exc})")
    cfg = load_config()
    report = synthesize(cfg, "inflection", "0.5.1", max_tasks=2, seed=0, box=task_box)
    assert len(report.tasks) == 2
    for task in report.tasks:
        assert task.provenance["sdist"] == "inflection-0.5.1.tar.gz"
        verdict = verify_task(task_box, task)
        assert verdict.gold_resolved and not verdict.empty_resolved, verdict
