"""SWE-smith task instances (JSON list, JSONL or Parquet).

A SWE-smith ``patch`` is the diff that *introduces* the bug into the upstream repository, and
``repo`` names its mirror ``swesmith/<owner>__<name>.<commit8>``, where a branch named after the
instance holds the buggy code. Our gold patch is therefore the inverse of ``patch``. An instance
without a problem statement gets one written from its failing tests (noted in provenance).
"""

from __future__ import annotations

import re
from pathlib import Path

from vtforge import gitrepo
from vtforge.config import Config
from vtforge.tasks.diffs import reverse
from vtforge.tasks.importers.common import ImportOptions, ParsedBatch, find_local_repo, importer, input_sha256
from vtforge.tasks.importers.swebench import looks_like_diff, read_records
from vtforge.tasks.model import IMPORTER_VERSION, Task
from vtforge.tasks.synth.statement import reproduce_line, test_title

_MIRROR = re.compile(r"^(?:swesmith/)?(?P<owner>[\w.-]+?)__(?P<name>[\w.-]+)\.(?P<commit>[0-9a-f]{7,40})$")


def statement_from_tests(repo: str, failing: list[str]) -> str:
    titles = []
    for node in failing:
        if test_title(node) not in titles:
            titles.append(test_title(node))
    listed = "\n".join(f"- `{n}`" for n in sorted(failing)[:8])
    return (
        f"Regression in {repo}: {', '.join(titles[:3])}\n\n"
        f"These tests fail at this commit:\n\n{listed}\n\n{reproduce_line(failing)}\n"
    )


@importer("swe-smith")
def parse(cfg: Config, path: Path, options: ImportOptions) -> ParsedBatch:
    batch = ParsedBatch()
    digest = input_sha256(path)
    seen: set[str] = set()
    for location, record, raw in read_records(path):
        if isinstance(record, str):
            batch.reject(location, "invalid_json", record, raw)
            continue
        if not isinstance(record, dict):
            batch.reject(location, "invalid_record", "a record must be an object", raw or str(record))
            continue
        problem = None
        for name in ("instance_id", "repo", "patch"):
            if not isinstance(record.get(name), str) or not record[name].strip():
                problem = f"{name} is missing or empty"
                break
        mirror = _MIRROR.match(record.get("repo") or "") if problem is None else None
        if problem is None and mirror is None:
            problem = f"repo is not a SWE-smith mirror name (owner__name.commit): {record['repo']!r}"
        if problem is None and not looks_like_diff(record["patch"]):
            problem = "patch is not a unified diff"
        if problem is not None:
            batch.reject(location, "invalid_record", problem, raw or record)
            continue
        instance_id = record["instance_id"]
        if instance_id in seen:
            batch.reject(location, "duplicate_instance_id", f"{instance_id} appears twice", raw or record)
            continue
        seen.add(instance_id)
        upstream = f"{mirror.group('owner')}/{mirror.group('name')}"
        try:
            base = Task.from_swebench(
                {
                    "instance_id": instance_id,
                    "repo": upstream,
                    "base_commit": record.get("base_commit") or instance_id,
                    "patch": reverse(record["patch"]),
                    "problem_statement": record.get("problem_statement") or "",
                    "FAIL_TO_PASS": record.get("FAIL_TO_PASS"),
                    "PASS_TO_PASS": record.get("PASS_TO_PASS"),
                    "created_at": record.get("created_at"),
                }
            )
        except ValueError as exc:
            batch.reject(location, "invalid_record", str(exc), raw or record)
            continue
        if not base.fail_to_pass:
            batch.reject(location, "no_fail_to_pass", "FAIL_TO_PASS is empty", raw or record)
            continue
        statement = base.problem_statement
        generated = not statement.strip()
        if generated:
            statement = statement_from_tests(upstream, base.fail_to_pass)
        mirror_name = f"{mirror.group('owner')}__{mirror.group('name')}.{mirror.group('commit')}"
        local = find_local_repo(options.repos, f"swesmith/{mirror_name}", instance_id)
        base_commit = base.base_commit
        if local is not None:
            base_commit = gitrepo.git(local, "rev-parse", f"{instance_id}^{{commit}}").strip()
        batch.tasks.append(
            base.replace(
                problem_statement=statement,
                base_commit=base_commit,
                source="swe-smith",
                split=options.split,
                repo_dir=str(local) if local else "",
                environment_setup_commit=mirror.group("commit"),
                provenance={
                    "dataset_slice": options.slice_name,
                    "origin": f"https://github.com/{record['repo']}/tree/{instance_id}",
                    "license": record.get("license"),
                    "commit": mirror.group("commit"),
                    "created_at": base.provenance.get("created_at"),
                    "importer_version": IMPORTER_VERSION,
                    "input_file": path.name,
                    "input_sha256": digest,
                    "image_name": record.get("image_name"),
                    "bug_patch": "inverted: SWE-smith's patch introduces the bug",
                    "statement": "generated_from_tests" if generated else "dataset",
                    "validated": False,
                    "repo_available": local is not None,
                },
            )
        )
        batch.notes["tasks"] += 1
    return batch
