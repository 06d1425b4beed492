"""GitHub issue/PR packs: the REST API's JSON as ``gh api`` exports it.

Layout of a pack folder (each file one ``gh api … --paginate`` output; ``--slurp`` works too)::

    repo.json                  gh api repos/OWNER/REPO                       (optional: licence)
    issues.json                gh api 'repos/OWNER/REPO/issues?state=all' --paginate
    pulls.json                 gh api 'repos/OWNER/REPO/pulls?state=all' --paginate
    pulls/<N>/files.json       gh api repos/OWNER/REPO/pulls/N/files --paginate
    pulls/<N>/comments.json    gh api repos/OWNER/REPO/pulls/N/comments --paginate   (review comments)
    issues/<N>/comments.json   gh api repos/OWNER/REPO/issues/N/comments --paginate  (optional: hints)

An issue that a *merged* pull request closes (GitHub's closing keywords: "fixes #N", …) and whose
PR changes tests and source becomes a task: the issue is the problem statement, the PR's source
changes the gold patch and its test changes the test patch, based on the PR's ``base.sha``.
With ``--repos`` holding a clone that has that commit, F2P/P2P are measured in the sandbox;
otherwise they stay empty and ``provenance.validated`` is false. Every other issue and PR is kept
as context (with its review comments) for the reasoning data.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from vtforge.config import Config
from vtforge.sandbox import open_sandbox
from vtforge.tasks.diffs import changed_paths, github_file_diff, is_test_path
from vtforge.tasks.importers.common import (
    ImportOptions,
    ParsedBatch,
    find_local_repo,
    importer,
    input_sha256,
    read_gh_list,
)
from vtforge.tasks.model import IMPORTER_VERSION, Task
from vtforge.tasks.validate import measure_change

_CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+"
    r"(?:(?P<repo>[\w.-]+/[\w.-]+)#|https://github\.com/(?P<url_repo>[\w.-]+/[\w.-]+)/issues/|#)(?P<number>\d+)",
    re.IGNORECASE,
)


def linked_issues(pull: dict[str, Any], repo: str) -> list[int]:
    """Issue numbers of ``repo`` that the PR's title or body closes."""
    text = f"{pull.get('title') or ''}\n{pull.get('body') or ''}"
    found: list[int] = []
    for match in _CLOSING.finditer(text):
        other = match.group("repo") or match.group("url_repo")
        if other and other.lower() != repo.lower():
            continue
        number = int(match.group("number"))
        if number not in found:
            found.append(number)
    return found


def _load(path: Path, batch: ParsedBatch) -> list[Any] | None:
    if not path.exists():
        return None
    try:
        return read_gh_list(path)
    except (ValueError, UnicodeDecodeError) as exc:
        batch.reject(str(path), "invalid_json", f"{path.name}: {exc}", path.read_bytes()[:65536])
        return None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _context(kind: str, repo: str, item: dict[str, Any], reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"github:{repo}#{kind}-{item.get('number')}",
        "kind": kind,
        "repo": repo,
        "number": item.get("number"),
        "title": item.get("title"),
        "body": item.get("body"),
        "state": item.get("state"),
        "url": item.get("html_url"),
        "created_at": item.get("created_at"),
        "labels": sorted(lab.get("name", "") for lab in item.get("labels") or [] if isinstance(lab, dict)),
        "reason": reason,
        **extra,
    }


@importer("github")
def parse(cfg: Config, path: Path, options: ImportOptions) -> ParsedBatch:
    batch = ParsedBatch()
    if not path.is_dir():
        batch.reject(
            str(path), "invalid_pack", "a GitHub pack is a folder holding issues.json and pulls.json"
        )
        return batch
    digest = input_sha256(path)
    repo_info = (_load(path / "repo.json", batch) or [{}])[0]
    issues_raw = _load(path / "issues.json", batch) or []
    pulls_raw = _load(path / "pulls.json", batch) or []
    repo = repo_info.get("full_name") if isinstance(repo_info, dict) else None
    license_ = (repo_info.get("license") or {}).get("spdx_id") if isinstance(repo_info, dict) else None

    issues: dict[int, dict[str, Any]] = {}
    for index, item in enumerate(issues_raw):
        if not isinstance(item, dict) or not isinstance(item.get("number"), int) or "title" not in item:
            batch.reject(f"issues.json[{index}]", "invalid_record", "an issue needs number and title", item)
            continue
        if "pull_request" in item:  # the issues API lists pull requests too
            continue
        issues[item["number"]] = item
    pulls: list[dict[str, Any]] = []
    for index, item in enumerate(pulls_raw):
        base = item.get("base") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("number"), int)
            or not isinstance(base, dict)
            or not base.get("sha")
        ):
            batch.reject(
                f"pulls.json[{index}]", "invalid_record", "a pull request needs number and base.sha", item
            )
            continue
        repo = repo or ((base.get("repo") or {}).get("full_name"))
        pulls.append(item)
    if not repo:
        batch.reject(str(path), "invalid_pack", "no repository name (repo.json full_name or base.repo)")
        return batch

    used_issues: set[int] = set()
    box = None
    try:
        for pull in sorted(pulls, key=lambda p: p["number"]):
            number = pull["number"]
            comments = _load(path / "pulls" / str(number) / "comments.json", batch) or []
            review = [
                {
                    "path": c.get("path"),
                    "body": c.get("body"),
                    "user": (c.get("user") or {}).get("login"),
                    "diff_hunk": c.get("diff_hunk"),
                    "created_at": c.get("created_at"),
                }
                for c in comments
                if isinstance(c, dict)
            ]
            links = [n for n in linked_issues(pull, repo) if n in issues]
            why = None
            if not pull.get("merged_at"):
                why = "not merged"
            elif not links:
                why = "closes no issue of the pack"
            files = _load(path / "pulls" / str(number) / "files.json", batch) if why is None else None
            if why is None and files is None:
                why = "no files.json for this pull request"
            source_parts: list[str] = []
            test_parts: list[str] = []
            if why is None:
                try:
                    for entry in files:
                        part = github_file_diff(entry)
                        (test_parts if is_test_path(entry["filename"]) else source_parts).append(part)
                except (ValueError, TypeError, KeyError) as exc:
                    batch.reject(f"pulls/{number}/files.json", "unappliable_file", str(exc), files)
                    why = f"unappliable file: {exc}"
                else:
                    if not test_parts:
                        why = "changes no tests"
                    elif not source_parts:
                        why = "changes only tests"
            if why is not None:
                batch.context.append(
                    _context(
                        "pull",
                        repo,
                        pull,
                        why,
                        linked_issues=links,
                        review_comments=review,
                        merged=bool(pull.get("merged_at")),
                    )
                )
                continue
            issue = issues[links[0]]
            used_issues.update(links)
            patch, test_patch = "".join(source_parts), "".join(test_parts)
            statement = "\n".join(
                f"{issues[n].get('title', '').strip()}\n{(issues[n].get('body') or '').strip()}\n"
                for n in links
            )
            hints = _hints(path, links, pull)
            owner, name = repo.split("/", 1)
            task = Task(
                instance_id=f"{owner}__{name}-{number}",
                repo=repo,
                base_commit=pull["base"]["sha"],
                problem_statement=statement,
                patch=patch,
                test_patch=test_patch,
                hints_text=hints,
                source="github",
                split=options.split,
                provenance={
                    "dataset_slice": options.slice_name,
                    "origin": pull.get("html_url") or f"https://github.com/{repo}/pull/{number}",
                    "license": license_,
                    "commit": (pull.get("merge_commit_sha") or pull["base"]["sha"]),
                    "created_at": pull.get("created_at"),
                    "importer_version": IMPORTER_VERSION,
                    "input_sha256": digest,
                    "issues": [issues[n].get("html_url") or f"#{n}" for n in links],
                    "review_comments": len(review),
                    "validated": False,
                    "repo_available": False,
                },
            )
            local = find_local_repo(options.repos, repo, task.base_commit)
            if local is not None and options.validate:
                box = box or open_sandbox(cfg)
                tests = sorted(
                    p
                    for p in changed_paths(test_patch)
                    if p.endswith(".py") and PurePosixPath(p).name != "conftest.py"
                )
                measured = measure_change(
                    box, local, task.base_commit, patch, test_patch, tests, task_id=task.instance_id
                )
                if not measured.ok:
                    batch.reject(
                        f"pulls/{number}",
                        measured.reason,
                        f"measured in the sandbox: {measured.reason}",
                        {"pull": number},
                    )
                    batch.context.append(
                        _context(
                            "pull",
                            repo,
                            pull,
                            f"invalid task: {measured.reason}",
                            linked_issues=links,
                            review_comments=review,
                            merged=True,
                        )
                    )
                    continue
                task = task.replace(
                    repo_dir=str(local),
                    fail_to_pass=measured.fail_to_pass,
                    pass_to_pass=measured.pass_to_pass,
                    provenance={**task.provenance, "validated": True, "repo_available": True},
                )
            batch.tasks.append(task)
            batch.notes["tasks"] += 1
            if issue.get("number") is not None and review:
                batch.context.append(
                    _context(
                        "pull",
                        repo,
                        pull,
                        "task pull request: review comments",
                        linked_issues=links,
                        review_comments=review,
                        merged=True,
                        instance_id=task.instance_id,
                    )
                )
    finally:
        if box is not None:
            box.close()
    for number, issue in sorted(issues.items()):
        if number not in used_issues:
            batch.context.append(
                _context("issue", repo, issue, "not closed by a merged PR that changes tests")
            )
    batch.notes["context"] = len(batch.context)
    return batch


def _hints(path: Path, links: list[int], pull: dict[str, Any]) -> str:
    """SWE-bench's hints: issue comments written before the pull request was opened."""
    opened = _time(pull.get("created_at"))
    hints: list[str] = []
    for number in links:
        file = path / "issues" / str(number) / "comments.json"
        if not file.exists():
            continue
        try:
            comments = read_gh_list(file)
        except ValueError:
            continue
        for comment in comments:
            if not isinstance(comment, dict):
                continue
            written = _time(comment.get("created_at"))
            if opened is None or (written is not None and written < opened):
                hints.append((comment.get("body") or "").strip())
    return "\n".join(h for h in hints if h)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2)
