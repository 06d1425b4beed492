"""``vtforge tasks``: import, list, decontaminate, manifest, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.tasks.formats import swebench_record
from tests.tasks.toypkg import make_history


def vtforge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vtforge", *args], capture_output=True, text=True)


def test_import_list_decontaminate_manifest(workspace: Path) -> None:
    repo = workspace / "toyshop"
    commits = make_history(repo)
    evals = workspace / "eval.jsonl"
    evals.write_text(json.dumps(swebench_record(repo, commits)) + "\n")
    train = workspace / "train.jsonl"
    train.write_text(json.dumps(swebench_record(repo, commits, instance_id="acme__toyshop-30")) + "\n")

    done = vtforge("tasks", "import", "swe-bench", str(train), "--slice", "extra", "--split", "train")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 1
    done = vtforge("tasks", "import", "swe-bench", str(evals), "--slice", "verified")
    assert done.returncode == 0, done.stderr
    done = vtforge("tasks", "decontaminate")
    assert done.returncode == 0, done.stderr
    assert '"flagged": 1' in done.stdout
    listed = vtforge("tasks", "list", "--slice", "extra")
    assert "eval-duplicate:acme" in listed.stdout
    overview = vtforge("tasks", "list")
    assert "verified" in overview.stdout and "extra" in overview.stdout
    done = vtforge("tasks", "manifest")
    assert done.returncode == 0, done.stderr
    first = (workspace / "docs/research/datasets/extra.json").read_text()
    assert vtforge("tasks", "manifest").returncode == 0
    assert (workspace / "docs/research/datasets/extra.json").read_text() == first
    assert json.loads(first)["decontamination"]["flagged"] == 1


def test_errors_are_one_line(workspace: Path) -> None:
    done = vtforge("tasks", "import", "kaggle", "x.jsonl")
    assert done.returncode == 2 and "KIND must be one of" in done.stderr
    done = vtforge("tasks", "import", "swe-bench", "missing.jsonl")
    assert done.returncode == 1 and "no such file" in done.stderr
    done = vtforge("tasks", "synth", "--package", "inflection")
    assert done.returncode == 1 and "NAME==VERSION" in done.stderr
    done = vtforge("tasks", "list", "--slice", "nothing")
    assert done.returncode == 1 and "empty or does not exist" in done.stderr
