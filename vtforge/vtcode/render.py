"""One renderer for every training format: a change becomes a VT Code transcript.

The corpus (``vtforge.corpus``) and the SFT export (``trl/sft_vtcode.parquet``) both render here,
so the two training formats cannot drift. The tool calls follow the pinned VT Code,
``VTCODE_TOOLS_VERSION`` (what ``vtcode schema tools`` of that build declares; ``TOOLS``):

* the issue or commit message is the user turn;
* reasoning, where the source has some, opens the assistant turn inside ``<think>…</think>``;
* the change is ``apply_patch`` ``{"input": "*** Begin Patch …"}``: VT Code's patch envelope
  (``*** Update File`` with ``@@`` context hunks, ``*** Add File``, ``*** Delete File``), one call
  per change set (per SEARCH/REPLACE block for curated rollouts, whose blocks may come in any order);
* tests are an ``exec_command`` ``{"cmd": …}`` call followed by its output, where one is known.

A *record* (``vtforge.corpus.sources`` documents it) carries the change as ``files`` (before and
after contents: hunks are built and checked here), ``blocks`` (SEARCH/REPLACE pairs) or ``diff``
(a unified diff: only the envelope is rewritten). The text form is ChatML with calls written as
``<tool_call>{"name": …, "arguments": {…}}</tool_call>``; ``tool_calls_in`` reads them back and
``verify`` re-applies the patches to the before-state with VT Code's hunk semantics
(``apply_patch_text``: lines, forward context search, trailing-newline rule); a document whose
edits do not give its after-state is dropped by the caller as ``render_mismatch``.
``vtforge.vtcode.patches`` counts what a patch touches but does not apply one, hence the applier here.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vtforge.vtcode.patches import edits_from_tool_call, parse_unified_diff

VTCODE_TOOLS_VERSION = "0.169.2"  # the vtcode whose tool schema the calls follow (`make vtcode`)
PATCH_TOOL = "apply_patch"
EXEC_TOOL = "exec_command"
RENDER_FORMAT = f"vtcode-{VTCODE_TOOLS_VERSION}+chatml.1"  # bump the suffix when the layout changes

Message = dict[str, Any]
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
_ANCHOR = re.compile(r"^[A-Za-z_$]")  # git's default funcname rule: an unindented identifier line
_CONTEXTS = (3, 8, 25)  # context lines tried, widest last, before a whole-file hunk


class RenderError(ValueError):
    """A record that cannot be rendered faithfully (its edits would not give its after-state)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


# --- the pinned tool schema ---------------------------------------------------------------------

_MAX_OUTPUT = {"type": "integer", "minimum": 1, "maximum": 50000, "default": 10000}


def _function(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


# Names, argument names, types, bounds and required sets as vtcode 0.169.2 declares them; the
# descriptions are ours (short). tests/corpus compares them with the binary's own schema dump.
TOOLS: tuple[dict[str, Any], ...] = (
    _function(
        PATCH_TOOL,
        "Edit files with a VT Code patch: *** Begin Patch, then *** Update File / *** Add File / "
        "*** Delete File sections with @@ hunks of context, - and + lines, then *** End Patch. "
        "Paths are workspace-relative; unified diffs are not accepted.",
        {
            "type": "object",
            "properties": {
                "input": {"type": "string", "description": "The patch, in VT Code's envelope."},
                "patch": {"type": "string", "description": "Alias of input."},
                "max_output_tokens": {**_MAX_OUTPUT, "description": "Cap on the tokens of the result."},
            },
            "anyOf": [{"required": ["input"]}, {"required": ["patch"]}],
        },
    ),
    _function(
        EXEC_TOOL,
        "Run a shell command (tests, builds, rg, ls, cat) in the sandbox; returns its output, exit "
        "code and, while it still runs, a session id for write_stdin. Edit files with apply_patch.",
        {
            "type": "object",
            "required": ["cmd"],
            "additionalProperties": False,
            "properties": {
                "cmd": {"type": "string", "description": "The shell command."},
                "yield_time_ms": {
                    "type": "integer",
                    "default": 10000,
                    "description": "Wait before returning.",
                },
                "background": {"type": "boolean", "default": False, "description": "Keep it running."},
                "max_output_tokens": {**_MAX_OUTPUT, "description": "Cap on the output tokens."},
                "workdir": {"type": "string", "description": "Working directory."},
                "tty": {"type": "boolean", "default": False, "description": "Run in a pseudo-terminal."},
                "sandbox_permissions": {
                    "type": "string",
                    "enum": [
                        "use_default",
                        "with_additional_permissions",
                        "require_escalated",
                        "bypass_sandbox",
                    ],
                    "default": "use_default",
                    "description": "Sandbox mode; escalation needs a justification.",
                },
                "additional_permissions": {
                    "type": "object",
                    "description": "Extra readable or writable roots.",
                    "properties": {
                        "fs_read": {"type": "array", "items": {"type": "string"}},
                        "fs_write": {"type": "array", "items": {"type": "string"}},
                    },
                    "additionalProperties": False,
                },
                "justification": {"type": "string", "description": "Why escalation is needed."},
            },
        },
    ),
    _function(
        "write_stdin",
        "Write to, poll or wait on a running exec_command session.",
        {
            "type": "object",
            "required": ["session_id"],
            "additionalProperties": False,
            "properties": {
                "session_id": {"type": "string", "description": "From exec_command."},
                "action": {"type": "string", "enum": ["write", "poll", "wait"], "description": "What to do."},
                "chars": {"type": "string", "description": "Text to write."},
                "yield_time_ms": {
                    "type": "integer",
                    "default": 1000,
                    "description": "Wait before returning.",
                },
                "wait_timeout_seconds": {"type": "integer", "minimum": 1, "description": "Longest wait."},
                "max_output_tokens": {**_MAX_OUTPUT, "description": "Cap on the output tokens."},
            },
            "anyOf": [
                {"required": ["chars"]},
                {"required": ["action"], "properties": {"action": {"const": "wait"}}},
            ],
        },
    ),
    _function(
        "search_tools",
        "Find further tools by keyword.",
        {
            "type": "object",
            "required": ["query"],
            "additionalProperties": False,
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": "Keywords."},
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 25,
                    "default": 5,
                    "description": "Most results.",
                },
                "detail_level": {
                    "type": "string",
                    "enum": ["name", "name_description", "full"],
                    "default": "name_description",
                    "description": "How much to show of each tool.",
                },
                "max_output_tokens": {**_MAX_OUTPUT, "description": "Cap on the result tokens."},
            },
        },
    ),
)


def tools_json() -> str:
    """``TOOLS`` as the JSON string TRL's ``tools`` column takes (one per row, parsed by TRL), in
    vtcode's order of tools and arguments."""
    return json.dumps(list(TOOLS), ensure_ascii=False)


# --- VT Code's line model ---------------------------------------------------------------------------


def split_lines(text: str) -> tuple[list[str], bool, str]:
    """(lines, ends with a newline, line ending) as VT Code reads a file before patching it."""
    ending = "\r\n" if "\r\n" in text else "\n"
    if not text:
        return [], False, ending
    lines = text.split("\n")
    trailing = text.endswith("\n")
    if trailing:
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines], trailing, ending


def _join(lines: Sequence[str], newline: bool, ending: str) -> str:
    text = ending.join(lines)
    return text + ending if newline and not text.endswith(ending) else text


_NORMAL = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **dict.fromkeys(
            "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "
        ),
    }
)


def _seek(lines: Sequence[str], pattern: Sequence[str], start: int, eof: bool) -> int | None:
    """First index ≥ start where ``pattern`` matches: exactly, then ignoring trailing, then
    surrounding whitespace, then typographic punctuation (VT Code's order of leniency)."""
    if not pattern:
        return start
    if len(pattern) > len(lines):
        return None
    if eof:
        start = len(lines) - len(pattern)
    last = len(lines) - len(pattern)
    for key in (
        lambda s: s,
        str.rstrip,
        str.strip,
        lambda s: s.strip().translate(_NORMAL),
    ):
        want = [key(p) for p in pattern]
        for index in range(start, last + 1):
            if all(key(lines[index + k]) == want[k] for k in range(len(want))):
                return index
    return None


def _line_hint(context: str) -> int | None:
    """An ``@@ -12,3 +12,4`` style header is read by VT Code as a line number, not an anchor."""
    parts = context.split()
    old = (
        parts[0]
        if parts and parts[0].startswith("-")
        else parts[1]
        if len(parts) > 1 and parts[1].startswith("-")
        else None
    )
    if old is None:
        return None
    head = old[1:].split(",")[0]
    return int(head) if head.isdigit() else None


# --- the patch envelope: apply ---------------------------------------------------------------------


@dataclass
class _Chunk:
    context: str | None
    old: list[str]
    new: list[str]
    eof: bool = False


def _update_chunks(lines: Sequence[str], at: int) -> tuple[list[_Chunk], int]:
    chunks: list[_Chunk] = []
    while at < len(lines):
        head = lines[at]
        if head.strip().startswith("***") and head.strip() != "*** End of File":
            break
        if not head.strip():
            at += 1
            continue
        if head.startswith("@@"):
            context = head[2:].strip()
            context = context[:-2].strip() if context.endswith("@@") else context
            chunk, at = _Chunk(context or None, [], []), at + 1
        elif not chunks:
            chunk = _Chunk(None, [], [])
        else:
            raise RenderError(f"expected '@@', found {head!r}")
        body = 0
        while at < len(lines):
            line = lines[at]
            if line == "*** End of File":
                chunk.eof, at = True, at + 1
                break
            if line.startswith("*** ") or (line.startswith("@@") and body):
                break
            kind, text = (line[:1], line[1:]) if line else (" ", "")
            if kind not in " +-":
                break
            if kind != "+":
                chunk.old.append(text)
            if kind != "-":
                chunk.new.append(text)
            body, at = body + 1, at + 1
        if not body:
            raise RenderError("an update hunk without lines")
        chunks.append(chunk)
    return chunks, at


def _apply_chunks(text: str, chunks: Sequence[_Chunk], path: str) -> str:
    lines, newline, ending = split_lines(text)
    replacements: list[tuple[int, int, list[str]]] = []
    cursor = 0
    for chunk in chunks:
        if chunk.context is not None:
            hint = _line_hint(chunk.context)
            if hint is not None:
                cursor = max(hint - 1, 0)
            else:
                found = _seek(lines, [chunk.context], cursor, False)
                if found is None:  # VT Code would try an ast-grep resolution: not modelled here
                    raise RenderError(f"{path}: @@ anchor {chunk.context!r} not found")
                cursor = found + 1
        old, new = list(chunk.old), list(chunk.new)
        if not old:
            at = min(cursor, len(lines)) if chunk.context is not None else len(lines)
            replacements.append((at, 0, new))
            cursor = at + len(new)
            continue
        found = _seek(lines, old, cursor, chunk.eof)
        if found is None and old[-1] == "":
            old.pop()
            if new and new[-1] == "":
                new.pop()
            found = _seek(lines, old, cursor, chunk.eof)
        if found is None:
            raise RenderError(f"{path}: hunk not found")
        replacements.append((found, len(old), new))
        cursor = found + len(old)
    out: list[str] = []
    current = 0
    for start, length, new in sorted(replacements, key=lambda r: r[0]):
        out += lines[current:start] + new
        current = start + length
    out += lines[current:]
    return _join(out, newline or any(c.eof for c in chunks), ending)


def apply_patch_text(files: Mapping[str, str], patch: str) -> dict[str, str]:
    """``files`` (path → text) after VT Code's ``apply_patch`` of ``patch``; ``RenderError`` when
    it would not apply (missing file, hunk not found, malformed envelope)."""
    lines = patch.split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or lines[0].strip() != "*** Begin Patch" or lines[-1].strip() != "*** End Patch":
        raise RenderError("not a *** Begin Patch … *** End Patch envelope")
    state = dict(files)
    at, end = 1, len(lines) - 1
    while at < end:
        head = lines[at].strip()
        if not head:
            at += 1
        elif head.startswith("*** Add File:"):
            path, at = head[len("*** Add File:") :].strip(), at + 1
            content = []
            while at < end and lines[at].startswith("+"):
                content.append(lines[at][1:] + "\n")
                at += 1
            state[path] = "".join(content)
        elif head.startswith("*** Delete File:"):
            path = head[len("*** Delete File:") :].strip()
            if state.pop(path, None) is None:
                raise RenderError(f"delete of missing file {path}")
            at += 1
        elif head.startswith("*** Update File:"):
            path = head[len("*** Update File:") :].strip()
            if path not in state:
                raise RenderError(f"update of missing file {path}")
            if lines[at + 1].strip().startswith("*** Move to:"):
                raise RenderError("*** Move to is not rendered")
            chunks, at = _update_chunks(lines[:end], at + 1)
            if not chunks:
                raise RenderError(f"empty update of {path}")
            state[path] = _apply_chunks(state[path], chunks, path)
        else:
            raise RenderError(f"unexpected line {head!r}")
    return state


# --- the patch envelope: write ---------------------------------------------------------------------


def _anchor(lines: Sequence[str], start: int, floor: int) -> str | None:
    """The nearest unindented identifier line above ``start`` (not above ``floor``), usable as an
    ``@@`` anchor: VT Code seeks it before the hunk."""
    for index in range(start - 1, floor - 1, -1):
        line = lines[index].strip()
        if _ANCHOR.match(lines[index]) and line and not line.endswith("@@") and _line_hint(line) is None:
            return line
    return None


def _update_section(path: str, before: str, after: str, context: int | None, anchors: bool) -> list[str]:
    """``*** Update File`` lines turning ``before`` into ``after``: hunks with ``context`` lines
    (None: one hunk over the whole file)."""
    a, a_newline, _ = split_lines(before)
    b, b_newline, _ = split_lines(after)
    if a_newline and not b_newline and b:
        raise RenderError(f"{path}: a patch cannot drop the final newline")
    if context is None:
        groups = [[("replace", 0, len(a), 0, len(b))]]
    else:
        groups = list(difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context))
    eof = b_newline and not a_newline
    if eof and (not groups or groups[-1][-1][2] < len(a)):
        tail = max(len(a) - 1, 0)
        groups.append([("equal", tail, len(a), len(b) - (len(a) - tail), len(b))])
    out = [f"*** Update File: {path}"]
    floor = 0
    for group in groups:
        anchor = _anchor(a, group[0][1], floor) if anchors else None
        out.append(f"@@ {anchor}" if anchor else "@@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [f" {line}" for line in a[i1:i2]]
                continue
            out += [f"-{line}" for line in a[i1:i2]]
            out += [f"+{line}" for line in b[j1:j2]]
        floor = group[-1][2]
    if eof:
        out.append("*** End of File")
    return out


def _envelope(sections: Iterable[list[str]]) -> str:
    return "\n".join(["*** Begin Patch", *(line for s in sections for line in s), "*** End Patch"]) + "\n"


def file_section(path: str, before: str | None, after: str | None) -> list[str]:
    """The envelope lines for one file's change, checked to give ``after`` under VT Code's rules
    (wider context, then no anchors, then one whole-file hunk, until one does)."""
    if (before is None and after is None) or before == after:
        return []
    if before is None:
        return [f"*** Add File: {path}", *(f"+{line}" for line in split_lines(str(after))[0])]
    if after is None:
        return [f"*** Delete File: {path}"]
    attempts = [(c, True) for c in _CONTEXTS[:1]] + [(c, False) for c in _CONTEXTS] + [(None, False)]
    for context, anchors in attempts:
        section = _update_section(path, before, after, context, anchors)
        try:
            if apply_patch_text({path: before}, _envelope([section]))[path] == after:
                return section
        except RenderError:
            continue
    raise RenderError(f"{path}: no patch gives the after-state")


def files_patch(files: Iterable[Mapping[str, Any]]) -> str | None:
    """One envelope for a change set (``path``, ``before``, ``after`` per file, sorted by path)."""
    sections = [
        file_section(f["path"], f.get("before"), f.get("after"))
        for f in sorted(files, key=lambda f: f["path"])
    ]
    sections = [s for s in sections if s]
    return _envelope(sections) if sections else None


def block_patch(path: str, search: str, replace: str) -> str:
    """A SEARCH/REPLACE block as an envelope: an empty search creates the file."""
    if not search.strip():
        return _envelope([[f"*** Add File: {path}", *(f"+{line}" for line in split_lines(replace)[0])]])
    old, new = split_lines(search)[0], split_lines(replace)[0]
    return _envelope([[f"*** Update File: {path}", "@@", *(f"-{x}" for x in old), *(f"+{x}" for x in new)]])


def codex_patch(diff: str) -> str:
    """A unified diff as VT Code's envelope (no before-state: the diff's own hunks and headers)."""
    from unidiff.errors import UnidiffParseError
    from unidiff.patch import PatchSet

    try:
        patch_set = PatchSet(diff)
    except UnidiffParseError as exc:
        raise RenderError(f"unreadable diff: {exc}") from exc
    sections = []
    for patched in patch_set:
        if patched.is_binary_file:
            continue
        if patched.is_added_file:
            added = [f"+{line.value.rstrip(chr(10))}" for hunk in patched for line in hunk if line.is_added]
            sections.append([f"*** Add File: {patched.path}", *added])
        elif patched.is_removed_file:
            sections.append([f"*** Delete File: {patched.path}"])
        else:
            section = [f"*** Update File: {patched.path}"]
            for hunk in patched:
                header = hunk.section_header.strip()
                usable = header and not header.endswith("@@") and _line_hint(header) is None
                section.append(f"@@ {header}" if usable else "@@")
                section += [
                    f"{line.line_type}{line.value.rstrip(chr(10))}"
                    for line in hunk
                    if line.line_type in " +-"
                ]
            sections.append(section)
    if not sections:
        raise RenderError("the diff changes no text file")
    return _envelope(sections)


def patch_plain(patch: str) -> str:
    """A patch's words without envelope markers or line prefixes (for n-gram decontamination)."""
    out = []
    for line in patch.splitlines():
        if line.startswith(("*** ", "@@")):
            continue
        out.append(line[1:] if line[:1] in (" ", "+", "-") else line)
    return "\n".join(out)


def apply_tool_calls(files: Mapping[str, str], calls: Iterable[ToolCall]) -> dict[str, str]:
    """``files`` after the ``apply_patch`` calls among ``calls``; other tools change nothing."""
    state = dict(files)
    for call in calls:
        if call.name == PATCH_TOOL:
            state = apply_patch_text(
                state, str(call.arguments.get("input") or call.arguments.get("patch") or "")
            )
    return state


# --- records → messages → text -----------------------------------------------------------------


def record_calls(record: Mapping[str, Any]) -> list[ToolCall]:
    """The record's ``apply_patch`` calls: one for its files or diff, one per SEARCH/REPLACE block."""
    if record.get("files"):
        patch = files_patch(record["files"])
        return [ToolCall(PATCH_TOOL, {"input": patch})] if patch else []
    if record.get("blocks"):
        return [
            ToolCall(PATCH_TOOL, {"input": block_patch(b["path"], b["search"], b["replace"])})
            for b in record["blocks"]
        ]
    diff = record.get("diff") or ""
    return [ToolCall(PATCH_TOOL, {"input": codex_patch(diff)})] if diff.strip() else []


def _openai_calls(calls: Sequence[ToolCall], prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
        }
        for i, c in enumerate(calls)
    ]


def _patch_result(call: ToolCall) -> str:
    files = edits_from_tool_call(call.name, call.arguments).files
    return json.dumps({"success": True, "modified_files": files}, ensure_ascii=False)


def messages_for(record: Mapping[str, Any]) -> list[Message]:
    """The record as chat messages in VT Code's tool format (OpenAI's shape: ``tool_calls`` with
    JSON-string arguments on the assistant turn, one ``tool`` message per call)."""
    calls = record_calls(record)
    if not calls:
        raise RenderError("the record changes nothing")
    messages: list[Message] = [{"role": "user", "content": str(record["instruction"]).strip()}]
    reasoning = (record.get("reasoning") or "").strip()
    content = f"<think>\n{reasoning}\n</think>" if reasoning else ""
    messages.append({"role": "assistant", "content": content, "tool_calls": _openai_calls(calls, "edit")})
    for index, call in enumerate(calls):
        messages.append(
            {
                "role": "tool",
                "tool_call_id": f"edit-{index}",
                "name": call.name,
                "content": _patch_result(call),
            }
        )
    tests = record.get("tests")
    if tests:
        run = ToolCall(EXEC_TOOL, {"cmd": tests["command"]})
        result: dict[str, Any] = {"output": str(tests["outcome"]).strip()}
        if tests.get("exit_code") is not None:
            result["exit_code"] = int(tests["exit_code"])
        messages.append({"role": "assistant", "content": "", "tool_calls": _openai_calls([run], "test")})
        messages.append(
            {
                "role": "tool",
                "tool_call_id": "test-0",
                "name": EXEC_TOOL,
                "content": json.dumps(result, ensure_ascii=False),
            }
        )
    return messages


def _call_json(call: ToolCall) -> str:
    # "</" is escaped as "<\/" (the same JSON string) so a file holding "</tool_call>" cannot end the tag
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return body.replace("</", "<\\/")


def chatml(messages: Sequence[Message]) -> str:
    """Messages as ChatML text, tool calls inline as ``<tool_call>{…}</tool_call>``."""
    parts = []
    for message in messages:
        body = [message["content"]] if message.get("content") else []
        for call in message.get("tool_calls") or []:
            function = call["function"]
            written = _call_json(ToolCall(function["name"], json.loads(function["arguments"])))
            body.append(f"<tool_call>{written}</tool_call>")
        parts.append(f"<|im_start|>{message['role']}\n" + "\n".join(body) + "<|im_end|>\n")
    return "".join(parts)


def render_text(record: Mapping[str, Any]) -> str:
    """The record's training text (``chatml(messages_for(record))``)."""
    return chatml(messages_for(record))


def tool_calls_in(text: str) -> list[ToolCall]:
    """Every tool call written in a rendered transcript, in order."""
    calls = []
    for match in _TOOL_CALL.finditer(text):
        value = json.loads(match.group(1))
        calls.append(ToolCall(value["name"], value["arguments"]))
    return calls


def verify(record: Mapping[str, Any], text: str) -> None:
    """Raise ``RenderError`` unless the text's patches, read back, are what the record changes:
    re-applied to the before-state they give the after-state (records with ``files``), and VT
    Code's patch reader (``vtforge.vtcode.patches``) finds the record's files in them."""
    calls = [c for c in tool_calls_in(text) if c.name == PATCH_TOOL]
    touched = {p for c in calls for p in edits_from_tool_call(c.name, c.arguments).files}
    files = record.get("files") or []
    if files:
        changed = {f["path"] for f in files if f.get("before") != f.get("after")}
        if touched != changed:
            raise RenderError(f"the patches touch {sorted(touched)}, the record changes {sorted(changed)}")
        before = {f["path"]: f["before"] for f in files if f.get("before") is not None}
        after = {f["path"]: f["after"] for f in files if f.get("after") is not None}
        if apply_tool_calls(before, calls) != after:
            raise RenderError("re-applying the rendered patches does not give the after-state")
    elif record.get("blocks") and touched != {b["path"] for b in record["blocks"]}:
        raise RenderError("the patches do not touch the blocks' files")
    elif not record.get("blocks") and record.get("diff"):
        text_files = set(parse_unified_diff(record["diff"]).files) - set(record.get("binary") or [])
        if not touched <= text_files:
            raise RenderError("the patch touches files the diff does not")
