"""Small helpers on unified diffs."""

from __future__ import annotations

import re

_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_NEW_FILE = re.compile(r"^\+\+\+ (?:b/)?(\S+)")
_OLD_FILE = re.compile(r"^--- (?:a/)?(\S+)")


def files_in_patch(diff: str) -> list[str]:
    """Repository-relative paths a diff touches (old and new names), in order, without /dev/null."""
    found: list[str] = []
    for line in diff.splitlines():
        match = _DIFF_GIT.match(line)
        names = match.groups() if match else ()
        if not names:
            single = _NEW_FILE.match(line) or _OLD_FILE.match(line)
            names = single.groups() if single else ()
        for name in names:
            if name != "/dev/null" and name not in found:
                found.append(name)
    return found
