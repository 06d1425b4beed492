"""What an edit tool call changed: files and line counts, read from the tool's arguments.

VT Code's edit tool is ``apply_patch`` with Codex's patch envelope::

    *** Begin Patch
    *** Add File: new.py          (every following ``+`` line is added)
    *** Update File: old.py       (optionally ``*** Move to: renamed.py``)
    @@ optional context header
     context line
    -removed line
    +added line
    *** Delete File: gone.py
    *** End Patch

Older versions used ``edit_file`` (``old_str`` → ``new_str``) and ``search_replace``
(``search`` → ``replace``); ``write_file``/``create_file`` write a whole file. We count what the
call *asked for*; whether it applied is the step's status. Unified diffs (``--- a/`` / ``+++ b/``)
are read too, since models sometimes hand ``apply_patch`` one.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

PATCH_TOOLS = frozenset({"apply_patch", "patch", "edit", "multi_edit"})
REPLACE_TOOLS = {  # tool → (old-text keys, new-text keys)
    "edit_file": (("old_str", "old_string", "old_text"), ("new_str", "new_string", "new_text")),
    "search_replace": (("search", "old_string", "old_str"), ("replace", "new_string", "new_str")),
    "str_replace": (("old_str",), ("new_str",)),
}
WRITE_TOOLS = frozenset({"write_file", "create_file"})
PATH_KEYS = ("path", "file_path", "filepath", "file", "target_file")


@dataclass
class FileEdits:
    """Files touched and lines added/removed by one edit."""

    files: list[str] = field(default_factory=list)
    added: int = 0
    removed: int = 0

    def touch(self, path: str) -> None:
        path = path.strip()
        if path and path not in self.files:
            self.files.append(path)

    @property
    def empty(self) -> bool:
        return not self.files and not self.added and not self.removed


def parse_codex_patch(text: str) -> FileEdits:
    """Files and line counts of a ``*** Begin Patch`` body (or a unified diff)."""
    edits = FileEdits()
    if "*** Begin Patch" not in text and "*** Update File:" not in text and "*** Add File:" not in text:
        return parse_unified_diff(text)
    section: str | None = None  # "add" | "update" | "delete"
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("*** "):
            header = line[4:]
            for prefix, kind in (
                ("Add File:", "add"),
                ("Update File:", "update"),
                ("Delete File:", "delete"),
            ):
                if header.startswith(prefix):
                    edits.touch(header[len(prefix) :])
                    section = kind
                    break
            else:
                if header.startswith("Move to:"):
                    edits.touch(header[len("Move to:") :])
                elif header.startswith(("End Patch", "Begin Patch")):
                    section = None
            continue
        if section == "add" and line.startswith("+"):
            edits.added += 1
        elif section == "update":
            if line.startswith("+"):
                edits.added += 1
            elif line.startswith("-"):
                edits.removed += 1
    return edits


def parse_unified_diff(text: str) -> FileEdits:
    """Files and line counts of a ``diff -u``/``git diff`` body."""
    edits = FileEdits()
    in_hunk = False
    for line in text.splitlines():
        if line.startswith("+++ ") or line.startswith("--- "):
            in_hunk = False
            name = line[4:].split("\t", 1)[0].strip()
            if name != "/dev/null":
                edits.touch(name[2:] if name[:2] in ("a/", "b/") else name)
            continue
        if line.startswith("@@"):
            in_hunk = True
            continue
        if line.startswith("diff --git"):
            in_hunk = False
            continue
        if in_hunk and line.startswith("+"):
            edits.added += 1
        elif in_hunk and line.startswith("-"):
            edits.removed += 1
    return edits


def _line_count(text: Any) -> int:
    if not isinstance(text, str) or not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def _first(args: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in args:
            return args[key]
    return None


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value (patch bodies hide under ``input``, ``patch`` …)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def edits_from_tool_call(tool_name: str | None, arguments: Any) -> FileEdits:
    """What an edit tool call changes; empty for tools that do not edit files."""
    if isinstance(arguments, str):
        stripped = arguments.lstrip()
        if stripped.startswith(("{", "[")):
            with contextlib.suppress(json.JSONDecodeError):
                arguments = json.loads(arguments)
    name = (tool_name or "").rsplit("__", 1)[-1].lower()  # mcp__server__tool → tool
    edits = FileEdits()
    if name in REPLACE_TOOLS and isinstance(arguments, dict):
        old_keys, new_keys = REPLACE_TOOLS[name]
        path = _first(arguments, PATH_KEYS)
        if isinstance(path, str):
            edits.touch(path)
        edits.removed = _line_count(_first(arguments, old_keys))
        edits.added = _line_count(_first(arguments, new_keys))
        return edits
    if name in WRITE_TOOLS and isinstance(arguments, dict):
        path = _first(arguments, PATH_KEYS)
        if isinstance(path, str):
            edits.touch(path)
        edits.added = _line_count(_first(arguments, ("content", "contents", "text")))
        return edits
    if name in PATCH_TOOLS or any("*** Begin Patch" in s for s in _strings(arguments)):
        for text in _strings(arguments):
            if "*** Begin Patch" in text or "\n@@" in text or text.startswith("@@"):
                found = parse_codex_patch(text)
                for path in found.files:
                    edits.touch(path)
                edits.added += found.added
                edits.removed += found.removed
    return edits
