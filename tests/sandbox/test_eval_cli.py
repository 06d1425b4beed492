"""``vtforge eval`` end to end on a real repository: gold resolves, an empty patch does not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from swebench.harness.reporting import make_run_report

from tests.sandbox.toyrepo import ToyRepo
from tests.support import require_service

pytestmark = pytest.mark.slow


def vtforge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from vtforge.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def landed(workspace: Path, event_type: str) -> list[dict]:
    files = sorted((workspace / ".forge" / "landing" / event_type).rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


# writes its own always-passing version of the test file the test patch creates, and no fix
TAMPER = (
    "diff --git a/tests/test_add.py b/tests/test_add.py\nnew file mode 100644\n--- /dev/null\n"
    "+++ b/tests/test_add.py\n@@ -0,0 +1,2 @@\n+def test_add():\n+    assert True\n"
)


def predictions(toy: ToyRepo, instance_id: str) -> list[dict]:
    wrong = toy.gold_patch + (
        "diff --git a/tests/test_basic.py b/tests/test_basic.py\n"
        "--- a/tests/test_basic.py\n+++ b/tests/test_basic.py\n"
        "@@ -5,3 +5,3 @@ from toycalc import clamp, mul\n"
        " def test_mul():\n-    assert mul(3, 4) == 12\n+    assert mul(3, 4) == 13\n \n"
    )
    return [
        {"instance_id": instance_id, "model_name_or_path": "gold", "model_patch": toy.gold_patch},
        {"instance_id": instance_id, "model_name_or_path": "org/empty", "model_patch": ""},
        {"instance_id": instance_id, "model_name_or_path": "none", "model_patch": None},
        {"instance_id": instance_id, "model_name_or_path": "breaks-p2p", "model_patch": wrong},
        {"instance_id": instance_id, "model_name_or_path": "garbage", "model_patch": "not a diff\n"},
        {"instance_id": instance_id, "model_name_or_path": "tamper", "model_patch": TAMPER},
    ]


def test_eval_grades_like_swe_bench(workspace: Path, toy: ToyRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    require_service(shutil.which("bwrap") is not None, "bubblewrap")
    instance = toy.instance()
    inst = write_jsonl(workspace / "instances.jsonl", [instance, toy.instance("toy__toycalc-unpredicted")])
    rows = predictions(toy, instance["instance_id"])
    preds = write_jsonl(workspace / "preds.jsonl", rows)
    done = vtforge(
        "eval",
        "--instances",
        str(inst),
        "--predictions",
        str(preds),
        "--backend",
        "local",
        "--workers",
        "2",
        "--report-dir",
        "reports",
        "--run-id",
        "r1",
        cwd=workspace,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    run_dir = workspace / "reports" / "logs" / "run_evaluation" / "r1"

    def report(model: str) -> dict:
        path = run_dir / model / instance["instance_id"] / "report.json"
        return json.loads(path.read_text())[instance["instance_id"]]

    gold = report("gold")
    assert gold["resolved"] is True and gold["patch_successfully_applied"] is True
    assert gold["tests_status"]["FAIL_TO_PASS"]["success"] == toy.fail_to_pass
    assert gold["tests_status"]["PASS_TO_PASS"]["failure"] == []
    empty = report("org__empty")
    assert (empty["resolved"], empty["patch_exists"], empty["patch_is_None"]) == (False, False, False)
    assert report("none")["patch_is_None"] is True
    broken = report("breaks-p2p")
    assert broken["resolved"] is False
    assert broken["tests_status"]["PASS_TO_PASS"]["failure"] == ["tests/test_basic.py::test_mul"]
    assert broken["tests_status"]["FAIL_TO_PASS"]["failure"] == []
    # as the harness: a patch that does not apply leaves no report.json (an error), only its logs
    garbage_dir = run_dir / "garbage" / instance["instance_id"]
    assert sorted(p.name for p in garbage_dir.iterdir()) == ["patch.diff", "run_instance.log"]
    assert "status: patch_apply_failed" in (garbage_dir / "run_instance.log").read_text()

    def summary(model: str) -> dict:
        return json.loads((workspace / "reports" / f"{model}.r1.json").read_text())

    gold_summary = summary("gold")
    assert (
        gold_summary["resolved_ids"] == [instance["instance_id"]] and gold_summary["resolved_instances"] == 1
    )
    assert gold_summary["incomplete_ids"] == ["toy__toycalc-unpredicted"]
    assert gold_summary["total_instances"] == 2 and gold_summary["submitted_instances"] == 1
    empty_summary = summary("org__empty")
    assert (empty_summary["empty_patch_instances"], empty_summary["unresolved_instances"]) == (1, 0)
    assert summary("breaks-p2p")["unresolved_ids"] == [instance["instance_id"]]
    garbage_summary = summary("garbage")
    assert garbage_summary["error_instances"] == 1 and garbage_summary["completed_instances"] == 0

    # SWE-bench's own run report, reading our folder from the report folder, counts the same
    monkeypatch.chdir(workspace / "reports")
    instances = [instance, toy.instance("toy__toycalc-unpredicted")]
    for row in rows:
        model = row["model_name_or_path"].replace("/", "__")
        path = make_run_report(
            {row["instance_id"]: row}, instances, "r1", report_dir=str(workspace / "swebench")
        )
        reference = json.loads(Path(path).read_text())
        ours = summary(model)
        for key in ("completed", "resolved", "unresolved", "empty_patch", "error", "incomplete", "submitted"):
            assert ours[f"{key}_ids"] == reference[f"{key}_ids"], (model, key)

    tamper = report("tamper")  # its test file was reset before the real test patch went in
    assert tamper["patch_successfully_applied"] is True and tamper["resolved"] is False
    assert tamper["tests_status"]["FAIL_TO_PASS"]["failure"] == toy.fail_to_pass

    evaluations = {e["model"]: e for e in landed(workspace, "evaluation_result")}
    assert set(evaluations) == {"gold", "org/empty", "none", "breaks-p2p", "garbage", "tamper"}
    assert evaluations["gold"]["resolved"] is True and evaluations["org/empty"]["resolved"] is False
    rewards = landed(workspace, "reward_assigned")
    assert sorted(r["reward"] for r in rewards) == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    executions = landed(workspace, "execution_result")
    assert len(executions) == 4  # gold, breaks-p2p, garbage, tamper ran; empty and None did not
    assert {e["status"] for e in executions} == {"completed", "patch_apply_failed"}
    assert all(e["envelope"]["stage"] == "eval" for e in executions)
    # each evaluation is one trace: its evaluation_result the root, its run and reward under it
    roots = {e["envelope"]["trace_id"]: e["envelope"]["span_id"] for e in evaluations.values()}
    assert len(roots) == 6 and all(e["envelope"]["parent_span_id"] is None for e in evaluations.values())
    for child in [*rewards, *executions]:
        assert child["envelope"]["parent_span_id"] == roots[child["envelope"]["trace_id"]]


@pytest.mark.docker
def test_eval_on_the_docker_backend(workspace: Path, toy: ToyRepo, docker_box) -> None:
    instance = toy.instance("toy__toycalc-docker")
    inst = write_jsonl(workspace / "instances.jsonl", [instance])
    preds = write_jsonl(workspace / "preds.jsonl", predictions(toy, instance["instance_id"])[:2])
    (workspace / "vtcode.toml").write_text(
        f'[forge.sandbox]\nbackend = "docker"\ndocker_host = "{docker_box.base_url}"\nmemory_mb = 512\n'
    )
    done = vtforge(
        "eval", "--instances", str(inst), "--predictions", str(preds), "--report-dir", "r", cwd=workspace
    )
    assert done.returncode == 0, done.stderr + done.stdout
    run_dir = workspace / "r" / "logs" / "run_evaluation" / "preds"  # the run id: the predictions' stem
    gold = json.loads((run_dir / "gold" / instance["instance_id"] / "report.json").read_text())
    assert gold[instance["instance_id"]]["resolved"] is True
    empty = json.loads((run_dir / "org__empty" / instance["instance_id"] / "report.json").read_text())
    assert empty[instance["instance_id"]]["resolved"] is False
    assert "docker" in done.stdout


def test_eval_errors_are_one_line(workspace: Path) -> None:
    done = vtforge("eval", "--instances", "missing.jsonl", "--predictions", "p.jsonl", cwd=workspace)
    assert done.returncode == 1
    assert "--instances: file not found" in done.stderr
    inst = write_jsonl(workspace / "i.jsonl", [{"instance_id": "a"}])
    preds = write_jsonl(workspace / "p.jsonl", [{"instance_id": "b", "model_patch": "x"}])
    done = vtforge(
        "eval", "--instances", str(inst), "--predictions", str(preds), "--backend", "local", cwd=workspace
    )
    assert done.returncode == 1 and "unknown instances: b" in done.stderr


def test_eval_reads_parquet_instances(workspace: Path, toy: ToyRepo) -> None:
    """Hugging Face ships SWE-bench as Parquet; test lists may be lists there, not JSON strings."""
    require_service(shutil.which("bwrap") is not None, "bubblewrap")
    instance = {**toy.instance(), "FAIL_TO_PASS": toy.fail_to_pass}  # a list; PASS_TO_PASS a JSON string
    pq.write_table(pa.Table.from_pylist([instance]), workspace / "instances.parquet")
    rows = [
        {"instance_id": instance["instance_id"], "model_name_or_path": "gold", "model_patch": toy.gold_patch}
    ]
    preds = write_jsonl(workspace / "preds.jsonl", rows)
    done = vtforge(
        "eval",
        "--instances",
        "instances.parquet",
        "--predictions",
        str(preds),
        "--backend",
        "local",
        "--report-dir",
        "out",
        cwd=workspace,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    summary = json.loads((workspace / "out" / "gold.preds.json").read_text())
    assert summary["resolved_ids"] == [instance["instance_id"]]
    path = workspace / "out" / "logs" / "run_evaluation" / "preds" / "gold" / instance["instance_id"]
    report = json.loads((path / "report.json").read_text())[instance["instance_id"]]
    assert report["tests_status"]["FAIL_TO_PASS"] == {"success": toy.fail_to_pass, "failure": []}
    assert report["tests_status"]["PASS_TO_PASS"] == {"success": toy.pass_to_pass, "failure": []}


def test_eval_refuses_an_instance_without_repo_dir(workspace: Path, toy: ToyRepo) -> None:
    """It used to run in the current folder and exit 0 with an infra failure."""
    instance = toy.instance()
    del instance["repo_dir"]
    inst = write_jsonl(workspace / "instances.jsonl", [instance])
    rows = [
        {"instance_id": instance["instance_id"], "model_name_or_path": "gold", "model_patch": toy.gold_patch}
    ]
    preds = write_jsonl(workspace / "preds.jsonl", rows)
    done = vtforge(
        "eval", "--instances", str(inst), "--predictions", str(preds), "--backend", "local", cwd=workspace
    )
    assert done.returncode == 1, done.stdout
    message = " ".join(done.stderr.split())  # rich may wrap the line
    assert f"{inst}: instance {instance['instance_id']}: field repo_dir is missing" in message
    assert not (workspace / "evaluation" / "logs").exists()  # nothing ran


def test_eval_with_a_model_writes_its_predictions_then_grades_them(
    workspace: Path, toy: ToyRepo, real_model_gguf: Path
) -> None:
    """``--model``: localization and one BugFixer sample per instance on the real model, a
    predictions file in SWE-bench's format, then the harness's run report for that model."""
    require_service(shutil.which("bwrap") is not None, "bubblewrap")
    instance = toy.instance()
    inst = write_jsonl(workspace / "instances.jsonl", [instance])
    args = ("--instances", str(inst), "--backend", "local", "--report-dir", "out", "--run-id", "m1")
    done = vtforge("eval", *args, "--model", str(real_model_gguf), "--max-new-tokens", "48", cwd=workspace)
    assert done.returncode == 0, done.stderr + done.stdout
    label = real_model_gguf.stem
    written = [json.loads(line) for line in (workspace / "out" / "predictions" / f"{label}.m1.jsonl").open()]
    assert [(p["instance_id"], p["model_name_or_path"]) for p in written] == [
        (instance["instance_id"], label)
    ]
    assert isinstance(written[0]["model_patch"], str)  # a diff, or "" when no answer parsed
    run_report = json.loads((workspace / "out" / f"{label}.m1.json").read_text())
    assert run_report["submitted_ids"] == [instance["instance_id"]]
    if not written[0]["model_patch"]:
        assert run_report["empty_patch_ids"] == [instance["instance_id"]]
    # the model's samples are events like self-play's: real (not synthetic), with their raw text
    rollouts = landed(workspace, "rollout")
    assert {r["role"] for r in rollouts} >= {"localizer", "bugfixer"}
    assert all(r["policy_version"] == label and r["messages"][-1]["content"] for r in rollouts)
    assert all(r["envelope"]["synthetic"] is False and r["envelope"]["run_id"] == "m1" for r in rollouts)


def test_eval_needs_predictions_or_a_model(workspace: Path) -> None:
    inst = write_jsonl(workspace / "i.jsonl", [{"instance_id": "a"}])
    done = vtforge("eval", "--instances", str(inst), cwd=workspace)
    assert done.returncode == 2 and "--predictions" in done.stderr and "--model" in done.stderr
    done = vtforge(
        "eval", "--instances", str(inst), "--predictions", str(inst), "--engine", "llamacpp", cwd=workspace
    )
    assert done.returncode == 2 and "only with --model" in done.stderr
