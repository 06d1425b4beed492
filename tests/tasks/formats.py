"""Realistic inputs in each format's own shape, written from the formats' documentation and built
on the toy project's real history (so every diff applies and every commit id exists)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from vtforge.gitrepo import git

F2P = ["tests/test_toyshop.py::test_total", "tests/test_toyshop.py::test_total_empty"]
P2P = ["tests/test_toyshop.py::test_clamp_inside", "tests/test_toyshop.py::test_discount"]


def fix_diffs(repo: Path, commits: dict[str, str]) -> tuple[str, str]:
    """(patch, test_patch) of the history's fix commit, as ``git diff`` prints them."""
    old, new = commits["initial"], commits["fix"]
    return git(repo, "diff", old, new, "--", "toyshop"), git(repo, "diff", old, new, "--", "tests")


def swebench_record(repo: Path, commits: dict[str, str], **changes: Any) -> dict[str, Any]:
    """One SWE-bench instance: HF column names, FAIL_TO_PASS/PASS_TO_PASS as JSON strings."""
    patch, test_patch = fix_diffs(repo, commits)
    record = {
        "repo": "acme/toyshop",
        "instance_id": "acme__toyshop-12",
        "base_commit": commits["initial"],
        "patch": patch,
        "test_patch": test_patch,
        "problem_statement": "total() of a basket is one too high\n\n"
        "`total([1, 2, 3])` returns 7 and `total([])` returns 1.\n",
        "hints_text": "Looks like the accumulator does not start at zero.",
        "created_at": "2024-03-02T09:30:00Z",
        "version": "1.0",
        "FAIL_TO_PASS": json.dumps(F2P),
        "PASS_TO_PASS": json.dumps(P2P),
        "environment_setup_commit": commits["initial"],
    }
    record.update(changes)
    return record


def swesmith_record(history_repo: Path, commits: dict[str, str], **changes: Any) -> dict[str, Any]:
    """One SWE-smith instance: ``patch`` introduces the bug; F2P/P2P are lists."""
    bug = git(history_repo, "diff", commits["fix"], commits["initial"], "--", "toyshop")
    record = {
        "instance_id": "acme__toyshop.1a2b3c4d.func_pm_op_change__q8x2k1",
        "repo": "swesmith/acme__toyshop.1a2b3c4d",
        "patch": bug,
        "FAIL_TO_PASS": F2P,
        "PASS_TO_PASS": P2P,
        "created_at": "2025-04-10T00:00:00",
        "image_name": "swesmith.x86_64.acme_1776_toyshop.1a2b3c4d",
        "problem_statement": "",
    }
    record.update(changes)
    return record


def _hunks(diff: str) -> dict[str, str]:
    """GitHub's ``patch`` field per file: the hunks without the git headers."""
    out: dict[str, str] = {}
    for section in re.split(r"(?m)^(?=diff --git )", diff):
        if not section.strip():
            continue
        name = re.match(r"diff --git a/(\S+) b/(\S+)", section).group(2)
        body = section[section.index("\n@@") + 1 :]
        out[name] = body.rstrip("\n")  # GitHub drops the final newline
    return out


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10_000, "type": "User"}


def github_pack(folder: Path, repo: Path, commits: dict[str, str]) -> Path:
    """A pack as ``gh api --paginate`` writes it (pulls.json is two pages back to back)."""
    folder.mkdir(parents=True)
    url = "https://github.com/acme/toyshop"
    api = "https://api.github.com/repos/acme/toyshop"
    (folder / "repo.json").write_text(
        json.dumps(
            {
                "id": 1,
                "full_name": "acme/toyshop",
                "html_url": url,
                "default_branch": "main",
                "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT"},
            }
        )
    )
    issues = [
        {
            "number": 11,
            "title": "total() counts one too many",
            "state": "closed",
            "html_url": f"{url}/issues/11",
            "body": "Summing `[1, 2, 3]` gives 7, and an empty basket costs 1.",
            "user": _user("bob"),
            "labels": [{"name": "bug"}],
            "created_at": "2024-03-01T12:00:00Z",
            "comments": 2,
        },
        {
            "number": 12,
            "title": "Start totals at zero",
            "state": "closed",
            "html_url": f"{url}/pull/12",
            "pull_request": {"url": f"{api}/pulls/12", "merged_at": "2024-03-03T08:00:00Z"},
            "body": "Fixes #11",
            "user": _user("ada"),
            "labels": [],
            "created_at": "2024-03-02T09:30:00Z",
        },
        {
            "number": 13,
            "title": "Support currencies?",
            "state": "open",
            "html_url": f"{url}/issues/13",
            "body": "Could prices carry a currency?",
            "user": _user("eve"),
            "labels": [{"name": "question"}],
            "created_at": "2024-03-04T10:00:00Z",
        },
    ]
    (folder / "issues.json").write_text(json.dumps(issues, indent=1))
    base = {
        "label": "acme:main",
        "ref": "main",
        "sha": commits["initial"],
        "repo": {"full_name": "acme/toyshop", "html_url": url},
    }
    page1 = [
        {
            "number": 12,
            "title": "Start totals at zero",
            "state": "closed",
            "html_url": f"{url}/pull/12",
            "body": "Fixes #11.\n\nThe accumulator started at 1.",
            "user": _user("ada"),
            "created_at": "2024-03-02T09:30:00Z",
            "merged_at": "2024-03-03T08:00:00Z",
            "merge_commit_sha": commits["fix"],
            "base": base,
            "head": {"ref": "fix-total", "sha": commits["fix"]},
        },
    ]
    page2 = [
        {
            "number": 14,
            "title": "WIP currencies",
            "state": "open",
            "html_url": f"{url}/pull/14",
            "body": "Closes #13",
            "user": _user("eve"),
            "created_at": "2024-03-05T10:00:00Z",
            "merged_at": None,
            "merge_commit_sha": None,
            "base": base,
            "head": {"ref": "cur", "sha": "f" * 40},
        },
        {
            "number": 15,
            "title": "Describe the project",
            "state": "closed",
            "html_url": f"{url}/pull/15",
            "body": "Docs only.",
            "user": _user("ada"),
            "created_at": "2024-03-06T10:00:00Z",
            "merged_at": "2024-03-06T11:00:00Z",
            "merge_commit_sha": commits["docs"],
            "base": base,
            "head": {"ref": "docs", "sha": commits["docs"]},
        },
        {"number": 16, "title": "broken export", "state": "open", "body": None},
    ]
    (folder / "pulls.json").write_text(
        json.dumps(page1, indent=1) + "\n" + json.dumps(page2, indent=1) + "\n"
    )
    patch, test_patch = fix_diffs(repo, commits)
    files = [
        {
            "sha": "0" * 40,
            "filename": name,
            "status": "modified",
            "additions": 1,
            "deletions": 1,
            "changes": 2,
            "blob_url": f"{url}/blob/{commits['fix']}/{name}",
            "patch": hunks,
        }
        for name, hunks in sorted({**_hunks(patch), **_hunks(test_patch)}.items())
    ]
    (folder / "pulls" / "12").mkdir(parents=True)
    (folder / "pulls" / "12" / "files.json").write_text(json.dumps(files, indent=1))
    (folder / "pulls" / "12" / "comments.json").write_text(
        json.dumps(
            [
                {
                    "id": 901,
                    "path": "toyshop/__init__.py",
                    "diff_hunk": "@@ -12,7 +12,7 @@ def total(prices):",
                    "body": "Could we add a test for the empty basket too?",
                    "user": _user("carol"),
                    "created_at": "2024-03-02T11:00:00Z",
                    "commit_id": commits["fix"],
                },
            ]
        )
    )
    (folder / "issues" / "11").mkdir(parents=True)
    (folder / "issues" / "11" / "comments.json").write_text(
        json.dumps(
            [
                {
                    "id": 1,
                    "body": "Confirmed on 1.0.",
                    "user": _user("carol"),
                    "created_at": "2024-03-01T13:00:00Z",
                },
                {
                    "id": 2,
                    "body": "Fixed by #12, thanks!",
                    "user": _user("bob"),
                    "created_at": "2024-03-03T09:00:00Z",
                },
            ]
        )
    )
    return folder
