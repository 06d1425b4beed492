"""``vtforge tasks``: import, list, decontaminate, manifest, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import invoke
from tests.tasks.formats import swebench_record
from tests.tasks.toypkg import make_history


def test_import_list_decontaminate_manifest(workspace: Path) -> None:
    repo = workspace / "toyshop"
    commits = make_history(repo)
    evals = workspace / "eval.jsonl"
    evals.write_text(json.dumps(swebench_record(repo, commits)) + "\n")
    train = workspace / "train.jsonl"
    train.write_text(json.dumps(swebench_record(repo, commits, instance_id="acme__toyshop-30")) + "\n")

    done = invoke("tasks", "import", "swe-bench", str(train), "--slice", "extra", "--split", "train")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 1
    done = invoke("tasks", "import", "swe-bench", str(evals), "--slice", "verified")
    assert done.exit_code == 0, done.stderr
    done = invoke("tasks", "decontaminate")
    assert done.exit_code == 0, done.stderr
    assert '"flagged": 1' in done.stdout
    listed = invoke("tasks", "list", "--slice", "extra")
    assert "eval-duplicate:acme" in listed.stdout
    overview = invoke("tasks", "list")
    assert "verified" in overview.stdout and "extra" in overview.stdout
    done = invoke("tasks", "manifest")
    assert done.exit_code == 0, done.stderr
    first = (workspace / "docs/research/datasets/extra.json").read_text()
    assert invoke("tasks", "manifest").exit_code == 0
    assert (workspace / "docs/research/datasets/extra.json").read_text() == first
    assert json.loads(first)["decontamination"]["flagged"] == 1


def test_errors_are_one_line(workspace: Path) -> None:
    done = invoke("tasks", "import", "kaggle", "x.jsonl")
    assert done.exit_code == 2 and "KIND must be one of" in done.stderr
    done = invoke("tasks", "import", "swe-bench", "missing.jsonl")
    assert done.exit_code == 1 and "no such file" in done.stderr
    done = invoke("tasks", "synth", "--package", "inflection")
    assert done.exit_code == 1 and "NAME==VERSION" in done.stderr
    done = invoke("tasks", "list", "--slice", "nothing")
    assert done.exit_code == 1 and "empty or does not exist" in done.stderr
