"""Decontamination flags and counts; manifests with the same hashes on every run."""

from __future__ import annotations

import json

from tests.tasks.test_model_bank import PATCH, make_task
from vtforge.tasks.bank import save_slice
from vtforge.tasks.decontam import decontaminate, training_tasks
from vtforge.tasks.manifest import write_manifest

OTHER_PATCH = PATCH.replace("m.py", "n.py")


def test_eval_repos_files_and_duplicates_are_flagged() -> None:
    evals = [make_task("acme__widgets-1", split="eval")]
    train = [
        make_task("t-same-file"),  # same repo, same file
        make_task("t-same-repo", patch=OTHER_PATCH, problem_statement="other\n"),
        make_task("t-pypi", repo="pypi/widgets", patch=OTHER_PATCH, problem_statement="x\n"),
        make_task("t-clean", repo="other/gadgets", patch=OTHER_PATCH, problem_statement="y\n"),
        make_task(
            "t-dup", repo="other/gadgets2", patch=OTHER_PATCH, problem_statement="Widgets are off by one\n"
        ),
    ]
    flagged, report = decontaminate(train + evals, train + evals)
    flags = {t.instance_id: t.contamination_flags for t in flagged}
    assert flags["t-same-file"] == [
        "eval-duplicate:acme__widgets-1",
        "eval-file:widgets/m.py",
        "eval-repo:widgets",
    ]
    assert flags["t-same-repo"] == ["eval-repo:widgets"]
    assert flags["t-pypi"] == ["eval-repo:widgets"]  # the same project under another namespace
    assert flags["t-clean"] == []
    assert flags["t-dup"] == ["eval-duplicate:acme__widgets-1"]
    assert flags["acme__widgets-1"] == []
    assert report.to_dict() == {
        "total": 6,
        "eval_tasks": 1,
        "flagged": 4,
        "trainable": 1,
        "by_flag": {"eval-duplicate": 2, "eval-file": 1, "eval-repo": 3},
    }
    assert [t.instance_id for t in training_tasks(flagged)] == ["t-clean"]
    again, _ = decontaminate(flagged, flagged)
    assert again == flagged
    cleared, _ = decontaminate(flagged, [t for t in flagged if t.split == "train"])
    assert all(not t.contamination_flags for t in cleared)  # the eval slice went away


def test_manifest_is_reproducible_and_machine_independent(cfg, tmp_path) -> None:
    tasks = [make_task("b-2", repo_dir="/one/place"), make_task("a-1", split="eval", repo_dir="/one/place")]
    save_slice(cfg, "s", tasks)
    json_path, md_path = write_manifest(cfg, "s")
    assert json_path == cfg.root / "docs/research/datasets/s.json"
    first = (json_path.read_bytes(), md_path.read_bytes())
    write_manifest(cfg, "s")
    assert (json_path.read_bytes(), md_path.read_bytes()) == first
    manifest = json.loads(first[0])
    assert manifest["tasks"] == 2 and manifest["counts"]["by_split"] == {"eval": 1, "train": 1}
    assert manifest["instances"][0]["content_hash"] == tasks[1].content_hash()
    assert "https://github.com/acme/widgets" in manifest["origins"]
    save_slice(cfg, "s", [t.replace(repo_dir="/another/machine") for t in tasks])
    write_manifest(cfg, "s", tmp_path / "out")
    assert json.loads((tmp_path / "out/s.json").read_text())["slice_sha256"] == manifest["slice_sha256"]
    save_slice(cfg, "s", [tasks[0].replace(problem_statement="changed\n"), tasks[1]])
    write_manifest(cfg, "s", tmp_path / "out")
    assert json.loads((tmp_path / "out/s.json").read_text())["slice_sha256"] != manifest["slice_sha256"]
