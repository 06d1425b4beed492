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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from vtforge.config import Config
from vtforge.sandbox import Sandbox, open_sandbox
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
from vtforge.tasks.validate import ChangeMeasure, measure_change

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
    """A pack folder into tasks (merged PRs that close an issue and change tests and source) and
    context (every other issue and PR), with bad records rejected."""
    batch = ParsedBatch()
    if not path.is_dir():
        batch.reject(
            str(path), "invalid_pack", "a GitHub pack is a folder holding issues.json and pulls.json"
        )
        return batch
    pack = _read_pack(path, batch)
    if pack is None:
        return batch
    used_issues: set[int] = set()
    sandbox = _LazySandbox(cfg)
    try:
        for pull in sorted(pack.pulls, key=lambda p: p["number"]):
            used_issues.update(_import_pull(pack, pull, options, sandbox, batch))
    finally:
        sandbox.close()
    _add_issue_context(pack, used_issues, batch)
    batch.notes["context"] = len(batch.context)
    return batch


@dataclass(frozen=True)
class _Pack:
    """A pack's valid records and what every task of it shares (repository, licence, input hash)."""

    path: Path
    repo: str
    license: str | None
    digest: str
    issues: dict[int, dict[str, Any]]
    pulls: list[dict[str, Any]]


class _Changes(NamedTuple):
    """A pull request's diff split the SWE-bench way, or why it cannot make a task (``unfit``)."""

    patch: str
    test_patch: str
    unfit: str | None


class _LazySandbox:
    """One sandbox for the whole pack, opened only when a task is actually measured."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.box: Sandbox | None = None

    def get(self) -> Sandbox:
        """The pack's sandbox, opened on first use."""
        self.box = self.box or open_sandbox(self.cfg)
        return self.box

    def close(self) -> None:
        """Close the sandbox if one was opened."""
        if self.box is not None:
            self.box.close()


def _read_pack(path: Path, batch: ParsedBatch) -> _Pack | None:
    """The pack's files read and checked; None (rejected) when no repository name can be found."""
    digest = input_sha256(path)
    repo_info = (_load(path / "repo.json", batch) or [{}])[0]
    issues_raw = _load(path / "issues.json", batch) or []
    pulls_raw = _load(path / "pulls.json", batch) or []
    repo = repo_info.get("full_name") if isinstance(repo_info, dict) else None
    license_ = (repo_info.get("license") or {}).get("spdx_id") if isinstance(repo_info, dict) else None
    issues = _valid_issues(issues_raw, batch)
    pulls = _valid_pulls(pulls_raw, batch)
    repo = repo or _repo_of_pulls(pulls)
    if not repo:
        batch.reject(str(path), "invalid_pack", "no repository name (repo.json full_name or base.repo)")
        return None
    return _Pack(path, repo, license_, digest, issues, pulls)


def _valid_issues(items: list[Any], batch: ParsedBatch) -> dict[int, dict[str, Any]]:
    """Issues by number; malformed records rejected, and pull requests (which the issues API lists
    too) left out."""
    issues: dict[int, dict[str, Any]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("number"), int) or "title" not in item:
            batch.reject(f"issues.json[{index}]", "invalid_record", "an issue needs number and title", item)
            continue
        if "pull_request" in item:
            continue
        issues[item["number"]] = item
    return issues


def _valid_pulls(items: list[Any], batch: ParsedBatch) -> list[dict[str, Any]]:
    """Pull requests with a number and a base commit (a task needs both); the rest rejected."""
    pulls: list[dict[str, Any]] = []
    for index, item in enumerate(items):
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
        pulls.append(item)
    return pulls


def _repo_of_pulls(pulls: list[dict[str, Any]]) -> str | None:
    """The repository name from the first pull request whose base names it, for packs without
    repo.json."""
    for pull in pulls:
        name = (pull["base"].get("repo") or {}).get("full_name")
        if name:
            return name
    return None


def _import_pull(
    pack: _Pack, pull: dict[str, Any], options: ImportOptions, sandbox: _LazySandbox, batch: ParsedBatch
) -> list[int]:
    """One pull request into the batch: a task when it qualifies, context otherwise. Returns the issues
    it claimed for a task; they stay out of the issue context even when measuring rejects the task."""
    number = pull["number"]
    review = _review_comments(pack.path, number, batch)
    links = [n for n in linked_issues(pull, pack.repo) if n in pack.issues]
    changes = _task_changes(pack.path, pull, links, batch)
    if changes.unfit is not None:
        batch.context.append(
            _pull_context(pack.repo, pull, changes.unfit, links, review, merged=bool(pull.get("merged_at")))
        )
        return []
    issue = pack.issues[links[0]]
    task = _task(pack, pull, links, changes, len(review), options)
    local = find_local_repo(options.repos, pack.repo, task.base_commit)
    if local is not None and options.validate:
        measured = _measure(task, local, sandbox.get())
        if not measured.ok:
            _reject_measured(pack.repo, pull, links, review, measured.reason, batch)
            return links
        task = _with_measurement(task, local, measured)
    _add_task(pack.repo, pull, issue, links, review, task, batch)
    return links


def _add_task(
    repo: str,
    pull: dict[str, Any],
    issue: dict[str, Any],
    links: list[int],
    review: list[dict[str, Any]],
    task: Task,
    batch: ParsedBatch,
) -> None:
    """A task into the batch; its PR's review comments are also kept as context for the reasoning data."""
    batch.tasks.append(task)
    batch.notes["tasks"] += 1
    if issue.get("number") is not None and review:
        batch.context.append(
            _pull_context(
                repo,
                pull,
                "task pull request: review comments",
                links,
                review,
                merged=True,
                instance_id=task.instance_id,
            )
        )


def _review_comments(path: Path, number: int, batch: ParsedBatch) -> list[dict[str, Any]]:
    """The PR's review comments, reduced to what the reasoning data uses."""
    comments = _load(path / "pulls" / str(number) / "comments.json", batch) or []
    return [
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


def _task_changes(path: Path, pull: dict[str, Any], links: list[int], batch: ParsedBatch) -> _Changes:
    """The PR's changes when it can be a task; the cheap checks first, so files.json is only read
    for merged PRs that close an issue of the pack."""
    if not pull.get("merged_at"):
        return _Changes("", "", "not merged")
    if not links:
        return _Changes("", "", "closes no issue of the pack")
    return _read_changes(path, pull["number"], batch)


def _read_changes(path: Path, number: int, batch: ParsedBatch) -> _Changes:
    """files.json split into the gold patch (source) and the test patch; a task needs both."""
    files = _load(path / "pulls" / str(number) / "files.json", batch)
    if files is None:
        return _Changes("", "", "no files.json for this pull request")
    source_parts: list[str] = []
    test_parts: list[str] = []
    try:
        for entry in files:
            part = github_file_diff(entry)
            (test_parts if is_test_path(entry["filename"]) else source_parts).append(part)
    except (ValueError, TypeError, KeyError) as exc:
        batch.reject(f"pulls/{number}/files.json", "unappliable_file", str(exc), files)
        return _Changes("", "", f"unappliable file: {exc}")
    if not test_parts:
        return _Changes("", "", "changes no tests")
    if not source_parts:
        return _Changes("", "", "changes only tests")
    return _Changes("".join(source_parts), "".join(test_parts), None)


def _pull_context(
    repo: str,
    pull: dict[str, Any],
    reason: str,
    links: list[int],
    review: list[dict[str, Any]],
    *,
    merged: bool,
    **extra: str,
) -> dict[str, Any]:
    """A pull request kept as context for the reasoning data, with its linked issues and review."""
    return _context(
        "pull", repo, pull, reason, linked_issues=links, review_comments=review, merged=merged, **extra
    )


def _problem_statement(issues: dict[int, dict[str, Any]], links: list[int]) -> str:
    """The linked issues' titles and bodies, in the order the PR names them."""
    return "\n".join(
        f"{issues[n].get('title', '').strip()}\n{(issues[n].get('body') or '').strip()}\n" for n in links
    )


def _provenance(
    pack: _Pack, pull: dict[str, Any], links: list[int], review_count: int, options: ImportOptions
) -> dict[str, Any]:
    """Where a task came from, before measuring (``validated`` and ``repo_available`` start false)."""
    number = pull["number"]
    return {
        "dataset_slice": options.slice_name,
        "origin": pull.get("html_url") or f"https://github.com/{pack.repo}/pull/{number}",
        "license": pack.license,
        "commit": (pull.get("merge_commit_sha") or pull["base"]["sha"]),
        "created_at": pull.get("created_at"),
        "importer_version": IMPORTER_VERSION,
        "input_sha256": pack.digest,
        "issues": [pack.issues[n].get("html_url") or f"#{n}" for n in links],
        "review_comments": review_count,
        "validated": False,
        "repo_available": False,
    }


def _task(
    pack: _Pack,
    pull: dict[str, Any],
    links: list[int],
    changes: _Changes,
    review_count: int,
    options: ImportOptions,
) -> Task:
    """The unmeasured task of a qualifying PR: its issues as the statement, its changes as the patches."""
    number = pull["number"]
    statement = _problem_statement(pack.issues, links)
    hints = _hints(pack.path, links, pull)
    owner, name = pack.repo.split("/", 1)
    return Task(
        instance_id=f"{owner}__{name}-{number}",
        repo=pack.repo,
        base_commit=pull["base"]["sha"],
        problem_statement=statement,
        patch=changes.patch,
        test_patch=changes.test_patch,
        hints_text=hints,
        source="github",
        split=options.split,
        provenance=_provenance(pack, pull, links, review_count, options),
    )


def _runnable_tests(test_patch: str) -> list[str]:
    """The test modules a test patch touches, sorted; conftest.py holds fixtures, not tests."""
    return sorted(
        p for p in changed_paths(test_patch) if p.endswith(".py") and PurePosixPath(p).name != "conftest.py"
    )


def _measure(task: Task, local: Path, box: Sandbox) -> ChangeMeasure:
    """F2P/P2P of the task's fix, measured in the sandbox on a local clone."""
    tests = _runnable_tests(task.test_patch)
    return measure_change(
        box, local, task.base_commit, task.patch, task.test_patch, tests, task_id=task.instance_id
    )


def _reject_measured(
    repo: str,
    pull: dict[str, Any],
    links: list[int],
    review: list[dict[str, Any]],
    reason: str,
    batch: ParsedBatch,
) -> None:
    """A PR whose measured change is no valid task: rejected, and kept as context all the same."""
    number = pull["number"]
    batch.reject(f"pulls/{number}", reason, f"measured in the sandbox: {reason}", {"pull": number})
    batch.context.append(_pull_context(repo, pull, f"invalid task: {reason}", links, review, merged=True))


def _with_measurement(task: Task, local: Path, measured: ChangeMeasure) -> Task:
    """The task with its measured F2P/P2P and the clone it was measured on."""
    return task.replace(
        repo_dir=str(local),
        fail_to_pass=measured.fail_to_pass,
        pass_to_pass=measured.pass_to_pass,
        provenance={**task.provenance, "validated": True, "repo_available": True},
    )


def _add_issue_context(pack: _Pack, used_issues: set[int], batch: ParsedBatch) -> None:
    """Every issue no task was made from, kept as context."""
    for number, issue in sorted(pack.issues.items()):
        if number not in used_issues:
            batch.context.append(
                _context("issue", pack.repo, issue, "not closed by a merged PR that changes tests")
            )


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
