"""Commit packs from a local git repository: commits that change source and tests become tasks.

For each non-merge commit touching both non-test ``.py`` files and test files, the test changes
are the ``test_patch`` and the rest the gold ``patch``; both run in the sandbox on the parent
commit (tests only, then fix + tests) and FAIL_TO_PASS/PASS_TO_PASS are what changed. A commit
whose tests do not fail without the fix is rejected with its reason (quarantine), not kept.
The repository is cloned (bare) to ``<data_dir>/repos/<name>-commits`` so the bank owns its copy.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath

from vtforge import gitrepo
from vtforge.config import Config
from vtforge.sandbox import open_sandbox
from vtforge.tasks.bank import repos_dir
from vtforge.tasks.diffs import changed_paths, is_test_path, partition
from vtforge.tasks.importers.common import ImportOptions, ParsedBatch, importer
from vtforge.tasks.model import IMPORTER_VERSION, Task
from vtforge.tasks.synth.statement import reproduce_line, tests_report
from vtforge.tasks.validate import measure_change

_LICENSES = (
    ("Apache License", "Apache-2.0"),
    ("MIT License", "MIT"),
    ("Permission is hereby granted, free of charge", "MIT"),
    ("GNU GENERAL PUBLIC LICENSE", "GPL"),
    ("GNU LESSER GENERAL PUBLIC LICENSE", "LGPL"),
    ("Redistribution and use in source and binary forms", "BSD"),
    ("Mozilla Public License", "MPL-2.0"),
)


def guess_license(repo: Path, commit: str) -> str | None:
    for path in gitrepo.list_files(repo, commit):
        if "/" not in path and re.match(r"(LICEN[CS]E|COPYING)", path, re.I):
            text = gitrepo.show(repo, commit, path).decode("utf-8", "replace")[:4000]
            for marker, spdx in _LICENSES:
                if marker.lower() in text.lower():
                    return spdx
            return f"see {path}"
    return None


def clone_for_bank(cfg: Config, source: Path) -> Path:
    """A bare clone of ``source`` under the data dir, refreshed on re-import."""
    target = repos_dir(cfg) / f"{source.name}-commits"
    if target.exists() and not (target / "HEAD").exists():
        shutil.rmtree(target)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        gitrepo.git(target.parent, "clone", "-q", "--bare", "--no-hardlinks", str(source), str(target))
    else:
        gitrepo.git(target, "fetch", "-q", str(source), "+refs/heads/*:refs/heads/*")
    return target


def candidate_commits(repo: Path, rev: str = "HEAD") -> list[str]:
    return [c for c in gitrepo.git(repo, "rev-list", "--no-merges", "--reverse", rev).split() if c]


@importer("commit-pack")
def parse(cfg: Config, path: Path, options: ImportOptions) -> ParsedBatch:
    batch = ParsedBatch()
    if not gitrepo.has_commit(path, "HEAD"):
        batch.reject(str(path), "not_a_repository", f"{path} is not a git repository with commits")
        return batch
    repo = clone_for_bank(cfg, path)
    try:
        remote = gitrepo.git(path, "config", "--get", "remote.origin.url").strip()
    except gitrepo.GitError:
        remote = ""
    name = path.name
    with open_sandbox(cfg) as box:
        for commit in candidate_commits(repo):
            if options.max_tasks is not None and len(batch.tasks) >= options.max_tasks:
                batch.notes["skipped:max_tasks"] += 1
                continue
            parents = gitrepo.git(repo, "rev-list", "--parents", "-n", "1", commit).split()[1:]
            if len(parents) != 1:
                batch.notes["skipped:root_commit"] += 1
                continue
            parent = parents[0]
            diff = gitrepo.diff(repo, parent, commit)
            source, tests = partition(diff)
            source_py = [p for p in changed_paths(source) if p.endswith(".py")]
            if not source_py or not tests:
                batch.notes["skipped:not_source_and_tests"] += 1
                continue
            location = f"{path}@{commit[:12]}"
            test_files = sorted(
                p
                for p in changed_paths(tests)
                if p.endswith(".py")
                and PurePosixPath(p).name != "conftest.py"
                and is_test_path(p)
                and p in gitrepo.list_files(repo, commit)
            )
            if not test_files:
                batch.reject(
                    location, "no_test_files", "the commit's test changes hold no runnable test file", diff
                )
                continue
            instance_id = f"{name}__commit-{commit[:12]}"
            subject, _, body = gitrepo.git(repo, "log", "-1", "--format=%B", commit).strip().partition("\n")
            if not options.validate:
                batch.reject(
                    location, "not_validated", "commit packs need sandbox validation (--validate)", diff
                )
                continue
            measured = measure_change(box, repo, parent, source, tests, test_files, task_id=instance_id)
            if not measured.ok:
                batch.reject(
                    location,
                    measured.reason,
                    f"{measured.reason}: before={measured.before.status} after={measured.after.status} "
                    f"{(measured.after.error or '')[:300]}",
                    diff,
                )
                continue
            messages = {n: t.message for n, t in measured.before.tests.items()}
            statement = (
                "\n".join(
                    [
                        subject.strip(),
                        "",
                        "These tests fail at this commit:",
                        "",
                        *tests_report(measured.fail_to_pass, messages),
                        "",
                        reproduce_line(measured.fail_to_pass),
                    ]
                )
                + "\n"
            )
            created = gitrepo.git(repo, "log", "-1", "--format=%cI", commit).strip()
            batch.tasks.append(
                Task(
                    instance_id=instance_id,
                    repo=f"local/{name}",
                    base_commit=parent,
                    problem_statement=statement,
                    patch=source,
                    test_patch=tests,
                    fail_to_pass=measured.fail_to_pass,
                    pass_to_pass=measured.pass_to_pass,
                    hints_text=body.strip(),
                    environment_setup_commit=parent,
                    repo_dir=str(repo),
                    source="commit-pack",
                    split=options.split,
                    provenance={
                        "dataset_slice": options.slice_name,
                        "origin": f"{remote or path}@{commit}",
                        "license": guess_license(repo, commit),
                        "commit": commit,
                        "created_at": created,
                        "importer_version": IMPORTER_VERSION,
                        "tests_run": test_files,
                        "validated": True,
                        "validation": {
                            "gold_resolved": True,
                            "empty_resolved": False,
                            "backend": box.name,
                            "gold_status": measured.after.status,
                            "empty_status": measured.before.status,
                        },
                    },
                )
            )
            batch.notes["tasks"] += 1
            options.log(f"  {instance_id}: {len(measured.fail_to_pass)} fail → pass")
    return batch
