"""Each importer on realistic inputs, bad records into quarantine, idempotent re-import."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.tasks.formats import F2P, P2P, github_pack, swebench_record, swesmith_record
from tests.tasks.toypkg import make_history
from vtforge.tasks.bank import load_slice
from vtforge.tasks.diffs import reverse
from vtforge.tasks.importers.common import ImportOptions, run_import
from vtforge.tasks.validate import verify_task


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "toyshop"
    return repo, make_history(repo)


def quarantined(cfg, kind: str) -> list[tuple[str, str, str]]:
    files = list((cfg.quarantine_dir / f"tasks-{kind}").rglob("*.parquet"))
    if not files:
        return []
    query = f"SELECT location, reason, error FROM read_parquet({[str(f) for f in files]})"
    rows = duckdb.connect().execute(query).fetchall()
    return sorted(rows)


def events(cfg) -> int:
    files = list((cfg.landing_dir / "task_registered").rglob("*.parquet"))
    if not files:
        return 0
    return (
        duckdb.connect()
        .execute(f"SELECT count(*) FROM read_parquet({[str(f) for f in files]})")
        .fetchone()[0]
    )


def test_swebench_jsonl_with_bad_records(cfg, history, tmp_path: Path) -> None:
    repo, commits = history
    good = swebench_record(repo, commits)
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps(swebench_record(repo, commits, instance_id="acme__toyshop-13", base_commit="")),
        json.dumps(swebench_record(repo, commits, instance_id="acme__toyshop-14", patch="please fix it")),
        json.dumps(swebench_record(repo, commits, instance_id="acme__toyshop-15", FAIL_TO_PASS="[oops")),
        json.dumps(good),
    ]
    path = tmp_path / "swe-bench.jsonl"
    path.write_text("\n".join(lines) + "\n")
    repos = tmp_path / "clones"
    repos.mkdir()
    subprocess.run(["git", "clone", "-q", str(repo), str(repos / "acme__toyshop")], check=True)

    summary = run_import(cfg, "swe-bench", path, ImportOptions(slice_name="sb", split="eval", repos=repos))
    assert (summary.added, summary.rejected) == (1, 5)
    [task] = load_slice(cfg, "sb")
    assert task.fail_to_pass == F2P and task.pass_to_pass == P2P
    assert task.split == "eval" and task.source == "swe-bench"
    assert task.provenance["origin"] == "https://github.com/acme/toyshop/pull/12"
    assert task.repo_dir == str((repos / "acme__toyshop").resolve())
    reasons = {(loc, reason) for loc, reason, _ in quarantined(cfg, "swe-bench")}
    assert reasons == {
        ("swe-bench.jsonl:2", "invalid_json"),
        ("swe-bench.jsonl:3", "invalid_record"),
        ("swe-bench.jsonl:4", "invalid_record"),
        ("swe-bench.jsonl:5", "invalid_record"),
        ("swe-bench.jsonl:6", "duplicate_instance_id"),
    }
    assert events(cfg) == 1

    again = run_import(cfg, "swe-bench", path, ImportOptions(slice_name="sb", split="eval", repos=repos))
    assert (again.added, again.updated, again.unchanged, again.events) == (0, 0, 1, 0)
    assert events(cfg) == 1
    assert len(quarantined(cfg, "swe-bench")) == 5  # the same quarantine file, rewritten


@pytest.mark.slow
def test_imported_swebench_task_runs_in_the_sandbox(cfg, history, tmp_path: Path, task_box) -> None:
    repo, commits = history
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(swebench_record(repo, commits)) + "\n")
    run_import(cfg, "swe-bench", path, ImportOptions(slice_name="sb", split="eval", repos=repo.parent))
    [task] = load_slice(cfg, "sb")
    verdict = verify_task(task_box, task)
    assert verdict.gold_resolved and not verdict.empty_resolved, verdict


def test_swebench_parquet_with_hf_columns(cfg, history, tmp_path: Path) -> None:
    repo, commits = history
    records = [swebench_record(repo, commits), swebench_record(repo, commits, instance_id="acme__toyshop-20")]
    table = pa.Table.from_pylist(records)
    table = table.set_column(
        table.schema.get_field_index("created_at"),
        "created_at",
        pa.array([pa.scalar(1709371800000000, pa.timestamp("us"))] * 2),
    )
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(table, path)
    summary = run_import(cfg, "swe-bench", path, ImportOptions(slice_name="sbp", split="eval"))
    assert (summary.added, summary.rejected) == (2, 0)
    tasks = load_slice(cfg, "sbp")
    assert tasks[0].provenance["created_at"].startswith("2024-03-02T09:30")
    assert tasks[0].repo_dir == ""  # no local clone given
    assert tasks[0].provenance["repo_available"] is False


def test_swesmith_inverts_the_bug_patch(cfg, history, tmp_path: Path) -> None:
    repo, commits = history
    good = swesmith_record(repo, commits)
    records = [
        good,
        swesmith_record(repo, commits, instance_id="x.1", repo="acme/toyshop"),
        swesmith_record(repo, commits, instance_id="x.2", FAIL_TO_PASS=[]),
    ]
    path = tmp_path / "swesmith.json"
    path.write_text(json.dumps(records))
    summary = run_import(cfg, "swe-smith", path, ImportOptions(slice_name="smith", split="train"))
    assert (summary.added, summary.rejected) == (1, 2)
    [task] = load_slice(cfg, "smith")
    assert task.repo == "acme/toyshop" and task.source == "swe-smith"
    assert task.patch == reverse(good["patch"])
    assert task.provenance["statement"] == "generated_from_tests"
    assert "tests/test_toyshop.py::test_total" in task.problem_statement
    assert {r for _, r, _ in quarantined(cfg, "swe-smith")} == {"invalid_record", "no_fail_to_pass"}


@pytest.mark.slow
def test_github_pack_links_issue_to_merged_pr_and_measures_it(cfg, history, tmp_path: Path) -> None:
    repo, commits = history
    pack = github_pack(tmp_path / "pack", repo, commits)
    clones = tmp_path / "clones"
    clones.mkdir()
    subprocess.run(["git", "clone", "-q", str(repo), str(clones / "acme__toyshop")], check=True)
    summary = run_import(cfg, "github", pack, ImportOptions(slice_name="gh", split="train", repos=clones))
    assert summary.added == 1
    [task] = load_slice(cfg, "gh")
    assert task.instance_id == "acme__toyshop-12"
    assert task.problem_statement.startswith("total() counts one too many\nSumming")
    assert task.hints_text == "Confirmed on 1.0."  # only comments written before the PR
    assert task.fail_to_pass == F2P
    assert "tests/test_toyshop.py::test_clamp_inside" in task.pass_to_pass
    assert task.provenance["license"] == "MIT" and task.provenance["validated"] is True
    assert "tests/test_toyshop.py" not in task.patch and "toyshop/__init__.py" in task.patch
    context = [
        json.loads(line) for line in (cfg.data_dir / "tasks/context/gh.jsonl").read_text().splitlines()
    ]
    by_id = {c["id"]: c for c in context}
    assert by_id["github:acme/toyshop#issue-13"]["reason"].startswith("not closed")
    assert by_id["github:acme/toyshop#pull-14"]["reason"] == "not merged"
    assert by_id["github:acme/toyshop#pull-15"]["reason"] == "closes no issue of the pack"
    assert by_id["github:acme/toyshop#pull-12"]["review_comments"][0]["user"] == "carol"
    assert [(loc, r) for loc, r, _ in quarantined(cfg, "github")] == [("pulls.json[3]", "invalid_record")]
    again = run_import(cfg, "github", pack, ImportOptions(slice_name="gh", split="train", repos=clones))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)


def test_github_pack_without_a_clone_is_unvalidated(cfg, history, tmp_path: Path) -> None:
    repo, commits = history
    pack = github_pack(tmp_path / "pack", repo, commits)
    run_import(cfg, "github", pack, ImportOptions(slice_name="gh", split="train"))
    [task] = load_slice(cfg, "gh")
    assert task.fail_to_pass == [] and task.provenance["validated"] is False and task.repo_dir == ""


@pytest.mark.slow
def test_commit_pack_measures_each_candidate(cfg, history) -> None:
    repo, commits = history
    summary = run_import(cfg, "commit-pack", repo, ImportOptions(slice_name="commits", split="train"))
    assert summary.added == 1
    [task] = load_slice(cfg, "commits")
    assert task.instance_id == f"toyshop__commit-{commits['fix'][:12]}"
    assert task.base_commit == commits["initial"]
    assert task.fail_to_pass == F2P
    assert task.problem_statement.startswith("Fix total() of a basket counting one too many")
    assert task.provenance["license"] == "MIT" and task.provenance["commit"] == commits["fix"]
    assert Path(task.repo_dir).is_dir() and Path(task.repo_dir) != repo
    rejected = quarantined(cfg, "commit-pack")
    assert [(loc.split("@")[1], reason) for loc, reason, _ in rejected] == [
        (commits["refactor"][:12], "no_fail_to_pass")
    ]
    assert summary.notes["skipped:not_source_and_tests"] == 1  # the docs commit
    again = run_import(cfg, "commit-pack", repo, ImportOptions(slice_name="commits", split="train"))
    assert (again.added, again.unchanged, again.events) == (0, 1, 0)
