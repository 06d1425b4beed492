"""Unified-diff helpers: split a diff per file, tell tests from source, invert a diff.

Written here (not a library) because all we need is exact line-level surgery on ``git diff``
output, and the inverse must round-trip byte for byte.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_HUNK = re.compile(r"^@@ -(\d+(?:,\d+)?) \+(\d+(?:,\d+)?) @@(.*)$")
_TEST_PARTS = {"tests", "test", "testing"}


def is_test_path(path: str) -> bool:
    """pytest's default discovery names, plus test folders and conftest files."""
    p = PurePosixPath(path)
    name = p.name
    if not name.endswith(".py") and not any(part in _TEST_PARTS for part in p.parts[:-1]):
        return False
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(part in _TEST_PARTS for part in p.parts[:-1])
    )


def split_files(diff: str) -> list[tuple[str, str]]:
    """``[(path, text)]`` for each ``diff --git`` section (path is the b/ side, or a/ if deleted)."""
    sections: list[tuple[str, str]] = []
    current: list[str] = []
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git ") and current:
            sections.append(_named(current))
            current = []
        current.append(line)
    if current and current[0].startswith("diff --git "):
        sections.append(_named(current))
    return sections


def _named(lines: list[str]) -> tuple[str, str]:
    header = lines[0].rstrip("\n")
    match = re.match(r"diff --git a/(.+?) b/(.+)$", header)
    path = match.group(2) if match else header.split()[-1]
    for line in lines[1:6]:
        if line.startswith("+++ /dev/null") and match:
            path = match.group(1)
    return path, "".join(lines)


def partition(diff: str) -> tuple[str, str]:
    """``(source_diff, test_diff)``: a commit's change split into the fix and its tests."""
    source, tests = [], []
    for path, text in split_files(diff):
        (tests if is_test_path(path) else source).append(text)
    return "".join(source), "".join(tests)


def changed_paths(diff: str) -> list[str]:
    """The paths a diff changes: each file's new side, the old side for a deletion (the warehouse's
    ``diff_files`` macro, for ``git diff`` output). A plain unified diff without ``diff --git``
    headers (a model's answer) is read from its ``---``/``+++`` pairs by the same rule."""
    sections = split_files(diff)
    if sections:
        return [path for path, _ in sections]
    paths: list[str] = []
    old = None
    for line in diff.splitlines():
        if line.startswith("--- "):
            old = line[4:].split("\t")[0].strip()
        elif line.startswith("+++ "):
            new = line[4:].split("\t")[0].strip()
            path = old if new == "/dev/null" else new
            path = path.removeprefix("a/").removeprefix("b/") if path else path
            if path and path != "/dev/null" and path not in paths:
                paths.append(path)
    return paths


def reverse(diff: str) -> str:
    """The inverse of a unified diff (what undoes it): swaps sides, hunk ranges and +/- lines.

    Hunk bodies are consumed by their line counts, so a content line that happens to start with
    ``---`` is never mistaken for a header; within a run of changes removals stay first.
    """
    out: list[str] = []
    lines = diff.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("@@"):
            m = _HUNK.match(line.rstrip("\r\n"))
            if not m:
                out.append(line)
                i += 1
                continue
            ending = line[len(line.rstrip("\r\n")) :]
            out.append(f"@@ -{m.group(2)} +{m.group(1)} @@{m.group(3)}{ending}")
            old_left, new_left = _count(m.group(1)), _count(m.group(2))
            i += 1
            removed: list[str] = []  # pending lines of the new diff, removals first
            added: list[str] = []
            last: list[str] = out  # where the previous body line went
            while i < len(lines) and (old_left > 0 or new_left > 0 or lines[i].startswith("\\")):
                body = lines[i]
                if body.startswith("\\"):  # "\ No newline at end of file" follows its line
                    last.append(body)
                elif body.startswith("-"):
                    old_left -= 1
                    added.append("+" + body[1:])
                    last = added
                elif body.startswith("+"):
                    new_left -= 1
                    removed.append("-" + body[1:])
                    last = removed
                else:
                    out.extend(removed + added)
                    removed, added = [], []
                    old_left -= 1
                    new_left -= 1
                    out.append(body)
                    last = out
                i += 1
            out.extend(removed + added)
            continue
        if line.startswith("diff --git "):
            m = re.match(r"diff --git a/(.+?) b/(.+?)(\r?\n)?$", line)
            out.append(f"diff --git a/{m.group(2)} b/{m.group(1)}{m.group(3) or ''}" if m else line)
        elif line.startswith("new file mode"):
            out.append(line.replace("new file mode", "deleted file mode", 1))
        elif line.startswith("deleted file mode"):
            out.append(line.replace("deleted file mode", "new file mode", 1))
        elif line.startswith("index "):
            m = re.match(r"index ([0-9a-f]+)\.\.([0-9a-f]+)(.*)$", line, re.S)
            out.append(f"index {m.group(2)}..{m.group(1)}{m.group(3)}" if m else line)
        elif line.startswith("rename from ") and i + 1 < len(lines) and lines[i + 1].startswith("rename to "):
            out.append("rename from " + lines[i + 1][len("rename to ") :])
            out.append("rename to " + line[len("rename from ") :])
            i += 1
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = line[4:], lines[i + 1][4:]
            out.append("--- " + _swap_side(new, "a/"))
            out.append("+++ " + _swap_side(old, "b/"))
            i += 1
        else:
            out.append(line)
        i += 1
    return "".join(out)


def _count(span: str) -> int:
    return int(span.split(",")[1]) if "," in span else 1


def _swap_side(path_line: str, prefix: str) -> str:
    if path_line.startswith("/dev/null"):
        return path_line
    if path_line[:2] in ("a/", "b/"):
        return prefix + path_line[2:]
    return path_line


def github_file_diff(entry: dict) -> str:
    """A ``git diff`` section from one entry of GitHub's "list pull request files" response.

    GitHub gives only the hunks (``patch``); the headers are rebuilt from ``status`` and
    ``filename``/``previous_filename``. Raises ``ValueError`` when there is no patch (binary or
    too large a file), because such a change cannot be applied from the pack.
    """
    filename = entry.get("filename")
    if not isinstance(filename, str) or not filename:
        raise ValueError("pull file entry has no filename")
    hunks = entry.get("patch")
    status = entry.get("status", "modified")
    previous = entry.get("previous_filename") or filename
    if hunks is None:
        if status == "renamed" and not entry.get("changes"):
            return (
                f"diff --git a/{previous} b/{filename}\nsimilarity index 100%\n"
                f"rename from {previous}\nrename to {filename}\n"
            )
        raise ValueError(f"{filename}: GitHub gave no patch text (binary or too large)")
    if not hunks.endswith("\n"):
        hunks += "\n"
    if status == "added":
        head = (
            f"diff --git a/{filename} b/{filename}\nnew file mode 100644\n--- /dev/null\n+++ b/{filename}\n"
        )
    elif status == "removed":
        head = (
            f"diff --git a/{filename} b/{filename}\ndeleted file mode 100644\n"
            f"--- a/{filename}\n+++ /dev/null\n"
        )
    elif status == "renamed":
        head = (
            f"diff --git a/{previous} b/{filename}\nrename from {previous}\nrename to {filename}\n"
            f"--- a/{previous}\n+++ b/{filename}\n"
        )
    else:
        head = f"diff --git a/{filename} b/{filename}\n--- a/{filename}\n+++ b/{filename}\n"
    return head + hunks
