"""Unified diffs from file contents, and the normalisation that decides when two patches are one.

Every patch self-play makes comes from SEARCH/REPLACE edits applied to known base contents, so a
patch is fully described by the new contents of the files it touches. Two patches are the same
(run once, voted together) when those contents are equal after normalisation: for Python, the
AST with comments and formatting dropped (as Agentless normalises for majority voting); for any
other file, lines with trailing whitespace removed and blank lines dropped.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
from collections.abc import Mapping

NO_EOL = "\\ No newline at end of file\n"


def unified_diff(path: str, old: str | None, new: str | None) -> str:
    """A ``git apply``-able diff of one file (``None`` = the file does not exist)."""
    if old == new:
        return ""
    a = (old or "").splitlines(keepends=True)
    b = (new or "").splitlines(keepends=True)
    header = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        header.append("new file mode 100644\n")
    elif new is None:
        header.append("deleted file mode 100644\n")
    fromfile = "/dev/null" if old is None else f"a/{path}"
    tofile = "/dev/null" if new is None else f"b/{path}"
    out = list(header)
    body = list(difflib.unified_diff(a, b, fromfile, tofile, n=3))
    if not body:
        return ""
    for line in body:
        out.append(line if line.endswith("\n") else line + "\n" + NO_EOL)
    return "".join(out)


def diff_of(old: Mapping[str, str | None], new: Mapping[str, str | None]) -> str:
    """One diff over several files, in path order."""
    return "".join(unified_diff(p, old.get(p), new[p]) for p in sorted(new))


def diff_stats(diff: str) -> tuple[int, int]:
    """(lines added, lines removed) of a unified diff."""
    added = removed = 0
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def normalise_source(path: str, content: str | None) -> str:
    """Content with formatting and comments dropped (Python AST), else whitespace-normalised."""
    if content is None:
        return "\x00deleted"
    if path.endswith(".py"):
        try:
            return ast.unparse(ast.parse(content))
        except (SyntaxError, ValueError, RecursionError):
            pass
    return "\n".join(line.rstrip() for line in content.splitlines() if line.strip())


def content_key(contents: Mapping[str, str | None], *, kind: str = "patch") -> str:
    """A short hash of normalised new contents: the identity of a patch (or test file)."""
    digest = hashlib.sha256(kind.encode())
    for path in sorted(contents):
        digest.update(b"\x1f" + path.encode() + b"\x1e" + normalise_source(path, contents[path]).encode())
    return digest.hexdigest()[:16]
