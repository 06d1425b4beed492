"""Parsers for model outputs: localization lists and SEARCH/REPLACE edits.

Nothing here raises on what a model wrote: every parser returns a result whose ``status`` is
``"ok"`` or a ``ParseFailure`` reason, which the rollout event records. Reasoning blocks are
split off first (``reasoning.split_reasoning``) so an edit drafted while thinking is never applied.

The edit format is Agentless's::

    ### path/to/file.py
    <<<<<<< SEARCH
    exact lines from the file
    =======
    their replacement
    >>>>>>> REPLACE
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from vtforge.selfplay.diffs import content_key, diff_of, diff_stats
from vtforge.selfplay.reasoning import split_reasoning


class ParseFailure(StrEnum):
    """Why an output yielded nothing usable (recorded as the rollout's ``parse_status``)."""

    EMPTY_OUTPUT = "empty_output"
    UNTERMINATED_REASONING = "unterminated_reasoning"
    NO_FILES = "no_files"
    NO_EDIT_BLOCKS = "no_edit_blocks"
    UNTERMINATED_BLOCK = "unterminated_block"
    MISSING_DIVIDER = "missing_divider"
    NO_FILE_HEADER = "no_file_header"
    PATH_OUTSIDE_REPO = "path_outside_repo"
    UNKNOWN_FILE = "unknown_file"
    SEARCH_NOT_FOUND = "search_not_found"
    EMPTY_SEARCH = "empty_search"
    NO_CHANGE = "no_change"
    SYNTAX_ERROR = "syntax_error"
    MULTIPLE_TEST_FILES = "multiple_test_files"
    NO_NEW_TEST = "no_new_test"


OK = "ok"
FileReader = Callable[[str], str | None]  # path -> base content, None when absent


# --- paths -------------------------------------------------------------------------------------


def clean_path(raw: str) -> str | None:
    """A model-written path made relative; None when it points outside the repository."""
    path = raw.strip().strip("`'\"*").strip()
    path = re.sub(r"^(?:file|path)\s*:\s*", "", path, flags=re.I).strip("`'\" ")
    path = path.replace("\\", "/")
    if path.startswith(("a/", "b/")) and len(path) > 2:
        path = path[2:]
    while path.startswith("./"):
        path = path[2:]
    if not path or path.startswith("/") or ".." in path.split("/") or "\x00" in path:
        return None
    return path


def correct_path(path: str, tree: Sequence[str] | frozenset[str]) -> str | None:
    """The tree's file for ``path``: exact, else the unique file ending in it, else unique basename."""
    files = tree if isinstance(tree, frozenset) else frozenset(tree)
    if path in files:
        return path
    tail = [f for f in files if f.endswith("/" + path)]
    if len(tail) == 1:
        return tail[0]
    base = path.rsplit("/", 1)[-1]
    named = [f for f in files if f.rsplit("/", 1)[-1] == base]
    return named[0] if len(named) == 1 else None


# --- localization ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Localization:
    status: str
    files: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    reasoning: str | None = None


def parse_localization(text: str, tree: Iterable[str], *, limit: int = 5) -> Localization:
    """At most ``limit`` files, one per line, most important first, corrected against ``tree``."""
    split = split_reasoning(text)
    if split.unterminated and not split.answer.strip():
        return Localization(ParseFailure.UNTERMINATED_REASONING, reasoning=split.reasoning)
    if not split.answer.strip():
        return Localization(ParseFailure.EMPTY_OUTPUT, reasoning=split.reasoning)
    files = frozenset(tree)
    found: list[str] = []
    dropped: list[str] = []
    for line in split.answer.splitlines():
        line = line.strip()
        if not line or line.startswith("```"):
            continue
        line = re.sub(r"^(?:[-*+•]|\d+[.)])\s+", "", line)  # list bullets and numbering
        for token in re.findall(r"[\w./\\-]+\.[A-Za-z0-9]+", line) or [line]:
            path = clean_path(token)
            fixed = correct_path(path, files) if path else None
            if fixed is None:
                if token not in dropped:
                    dropped.append(token)
            elif fixed not in found:
                found.append(fixed)
    if not found:
        return Localization(ParseFailure.NO_FILES, dropped=dropped, reasoning=split.reasoning)
    return Localization(OK, found[:limit], dropped, split.reasoning)


# --- SEARCH/REPLACE blocks ---------------------------------------------------------------------

_HEADER = re.compile(r"^\s*#{2,4}\s*(?:file\s*:\s*)?(.+?)\s*$", re.I)
_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")


@dataclass(frozen=True)
class Block:
    path: str
    search: list[str]
    replace: list[str]


def parse_blocks(answer: str) -> tuple[str, list[Block]]:
    """The edit blocks of an answer (reasoning already removed), or a failure reason."""
    blocks: list[Block] = []
    path: str | None = None
    mode = None  # None | "search" | "replace"
    search: list[str] = []
    replace: list[str] = []
    for line in answer.splitlines():
        if mode is None:
            if _SEARCH.match(line):
                if path is None:
                    return ParseFailure.NO_FILE_HEADER, []
                mode, search, replace = "search", [], []
                continue
            header = _HEADER.match(line)
            if header and not line.strip().startswith("#####"):
                candidate = re.sub(r"^(?:file|path)\s*:\s*", "", header.group(1).strip(), flags=re.I)
                candidate = candidate.strip("`'\"* ")
                if re.fullmatch(r"[\w./\\-]+", candidate) and ("/" in candidate or "." in candidate):
                    path = candidate
            continue
        if mode == "search":
            if _DIVIDER.match(line):
                mode = "replace"
            elif _REPLACE.match(line):
                return ParseFailure.MISSING_DIVIDER, []
            elif _SEARCH.match(line):
                return ParseFailure.UNTERMINATED_BLOCK, []
            else:
                search.append(line)
            continue
        if _REPLACE.match(line):
            blocks.append(Block(path or "", search, replace))
            mode = None
        elif _SEARCH.match(line):
            return ParseFailure.UNTERMINATED_BLOCK, []
        else:
            replace.append(line)
    if mode is not None:
        return ParseFailure.UNTERMINATED_BLOCK, []
    if not blocks:
        return ParseFailure.NO_EDIT_BLOCKS, []
    return OK, blocks


def _find(lines: list[str], search: list[str]) -> int | None:
    """First line index where ``search`` matches: exactly, else ignoring trailing whitespace."""
    k = len(search)
    for exact in (True, False):
        want = search if exact else [s.rstrip() for s in search]
        for i in range(len(lines) - k + 1):
            window = lines[i : i + k] if exact else [x.rstrip() for x in lines[i : i + k]]
            if window == want:
                return i
    return None


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def apply_block(content: str, block: Block) -> str | None:
    """``content`` with the block's first match replaced; None when the search text is not there."""
    lines = content.splitlines()
    trailing = content.endswith("\n")
    at = _find(lines, block.search)
    search, replace = block.search, block.replace
    if at is None:
        search = _trim_blank(block.search)
        if not search:
            return None
        at = _find(lines, search)
        if at is None:
            return None
        replace = _trim_blank(block.replace)
    new_lines = lines[:at] + replace + lines[at + len(search) :]
    out = "\n".join(new_lines)
    return out + "\n" if (trailing or not content) and new_lines else out


# --- edits -> patch ----------------------------------------------------------------------------


@dataclass
class Edit:
    """A parsed SEARCH/REPLACE answer turned into new file contents and a unified diff."""

    status: str
    reasoning: str | None = None
    answer: str = ""
    old: dict[str, str | None] = field(default_factory=dict)
    new: dict[str, str | None] = field(default_factory=dict)
    diff: str = ""
    detail: str | None = None  # which file / block failed, for the trace
    scope: str = ""  # what the base is (a task id): equal contents on different bases differ

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def files(self) -> list[str]:
        return sorted(self.new)

    @property
    def key(self) -> str:
        return content_key(self.new, kind=f"patch\x1f{self.scope}")

    @property
    def stats(self) -> tuple[int, int]:
        return diff_stats(self.diff)


def parse_edit(
    text: str, read: FileReader, tree: Iterable[str], *, check_python: bool = True, scope: str = ""
) -> Edit:
    """SEARCH/REPLACE blocks of a completion applied to the base files."""
    split = split_reasoning(text)
    if split.unterminated and not split.answer.strip():
        return Edit(ParseFailure.UNTERMINATED_REASONING, split.reasoning)
    if not split.answer.strip():
        return Edit(ParseFailure.EMPTY_OUTPUT, split.reasoning)
    status, blocks = parse_blocks(split.answer)
    edit = Edit(status, split.reasoning, split.answer, scope=scope)
    if status != OK:
        return edit
    files = frozenset(tree)
    for block in blocks:
        path = clean_path(block.path)
        if path is None:
            edit.status, edit.detail = ParseFailure.PATH_OUTSIDE_REPO, block.path
            return edit
        fixed = correct_path(path, files)
        if fixed is None and path not in edit.new:  # a new file: only with an empty SEARCH
            if _trim_blank(block.search):
                edit.status, edit.detail = ParseFailure.UNKNOWN_FILE, path
                return edit
            edit.old[path] = None
            edit.new[path] = "\n".join(block.replace).rstrip("\n") + "\n"
            continue
        path = fixed or path
        if path not in edit.new:
            base = read(path)
            edit.old[path] = base
            edit.new[path] = base
        current = edit.new[path]
        if current is None:
            edit.status, edit.detail = ParseFailure.UNKNOWN_FILE, path
            return edit
        if not _trim_blank(block.search):
            edit.status, edit.detail = ParseFailure.EMPTY_SEARCH, path
            return edit
        updated = apply_block(current, block)
        if updated is None:
            edit.status, edit.detail = ParseFailure.SEARCH_NOT_FOUND, path
            return edit
        edit.new[path] = updated
    edit.new = {p: c for p, c in edit.new.items() if c != edit.old.get(p)}
    edit.old = {p: edit.old[p] for p in edit.new}
    if not edit.new:
        edit.status = ParseFailure.NO_CHANGE
        return edit
    if check_python:
        for path, content in edit.new.items():
            if path.endswith(".py") and content is not None:
                try:
                    compile(content, path, "exec", dont_inherit=True)
                except (SyntaxError, ValueError) as exc:
                    edit.status, edit.detail = ParseFailure.SYNTAX_ERROR, f"{path}: {exc}"
                    return edit
    edit.diff = diff_of(edit.old, edit.new)
    return edit


# --- TestWriter --------------------------------------------------------------------------------


def test_functions(source: str) -> dict[str, str]:
    """``{pytest name: normalised source}`` of the tests in a module (functions and Test* classes)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            out[node.name] = ast.unparse(node)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                    out[f"{node.name}::{item.name}"] = ast.unparse(item)
    return out


@dataclass
class TestEdit:
    """A TestWriter answer: the edited test file and the tests it adds or changes."""

    __test__ = False

    status: str
    edit: Edit
    path: str = ""
    names: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def key(self) -> str:
        return content_key(self.edit.new, kind=f"test\x1f{self.edit.scope}")


def parse_test_edit(text: str, read: FileReader, tree: Iterable[str], *, scope: str = "") -> TestEdit:
    """One test file edited by SEARCH/REPLACE, with at least one new or changed test in it."""
    edit = parse_edit(text, read, tree, scope=scope)
    if not edit.ok:
        return TestEdit(edit.status, edit)
    if len(edit.new) != 1:
        return TestEdit(ParseFailure.MULTIPLE_TEST_FILES, edit)
    path, content = next(iter(edit.new.items()))
    before = test_functions(edit.old.get(path) or "")
    after = test_functions(content or "")
    names = [n for n, src in after.items() if before.get(n) != src]
    if not names:
        return TestEdit(ParseFailure.NO_NEW_TEST, edit, path)
    return TestEdit(OK, edit, path, names)
