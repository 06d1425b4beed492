"""One renderer for every training format: a change becomes a VT Code transcript.

A *record* (what ``sources`` collects: a commit, a GitHub task, a bank task, a curated rollout) is
rendered as chat messages in VT Code's tool format, then as text:

* the issue or commit message is the user turn;
* reasoning, where the source has some, opens the assistant turn inside ``<think>…</think>``;
* the change is VT Code's own edit tools, in the JSON argument shapes of its tool schema:
  ``edit_file`` ``{"path", "old_str", "new_str"}`` (search/replace) for each hunk of a file whose
  before-state is known and whose old text is unique in it, ``create_file`` ``{"path", "content"}``,
  ``delete_file`` ``{"path"}``, ``write_file`` ``{"path", "content", "mode": "overwrite"}`` when no
  unique search text exists, and ``apply_patch`` ``{"input": "*** Begin Patch …"}`` (the Codex patch
  envelope) when only a diff is known;
* tests are a ``run_pty_cmd`` ``{"command": …}`` call followed by its outcome, where one is known.

The text form is ChatML (SmolLM2's template) with tool calls written the way ``vtforge serve`` hands
earlier tool calls to a ChatML model: ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``.
``tool_calls_in`` reads them back from the text and ``apply_tool_calls`` re-applies the edits: a
rendered commit re-applied to its before-state gives its after-state (checked for every document
at render time; a document that does not is removed as ``render_mismatch``).

``rollout_record`` turns a curated SFT example (``sft_examples``: SEARCH/REPLACE answers) into a
record, so the SFT data and the corpus go through the same renderer.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vtforge.selfplay.parsing import parse_blocks
from vtforge.selfplay.prompts import EDIT_FORMAT
from vtforge.selfplay.reasoning import split_reasoning

Message = dict[str, Any]

EDIT_TOOLS = ("edit_file", "create_file", "delete_file", "write_file", "apply_patch")
TEST_TOOL = "run_pty_cmd"
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)


class RenderError(ValueError):
    """A record that cannot be rendered faithfully (its edits would not give its after-state)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


# --- edits ----------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _hunks(before: str, after: str, context: int) -> list[tuple[str, str]]:
    """(old text, new text) of each group of changed lines, with ``context`` lines around it."""
    a, b = _lines(before), _lines(after)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out = []
    for group in matcher.get_grouped_opcodes(context):
        i1, i2 = group[0][1], group[-1][2]
        j1, j2 = group[0][3], group[-1][4]
        out.append(("".join(a[i1:i2]), "".join(b[j1:j2])))
    return out


def _search_replace(path: str, before: str, after: str) -> list[ToolCall] | None:
    """``edit_file`` calls that turn ``before`` into ``after``, each old text unique where it is
    applied; None when some hunk has no unique old text even with wide context."""
    for context in (3, 8, 20):
        calls: list[ToolCall] = []
        current = before
        for old, new in _hunks(before, after, context):
            if not old or current.count(old) != 1:
                break
            current = current.replace(old, new, 1)
            calls.append(ToolCall("edit_file", {"path": path, "old_str": old, "new_str": new}))
        else:
            if current == after:
                return calls
    return None


def file_edits(path: str, before: str | None, after: str | None) -> list[ToolCall]:
    """The VT Code edit calls for one file's change (search/replace where it can be)."""
    if before is None and after is None:
        return []
    if before is None:
        return [ToolCall("create_file", {"path": path, "content": after})]
    if after is None:
        return [ToolCall("delete_file", {"path": path})]
    if before == after:
        return []
    calls = _search_replace(path, before, after)
    if calls is None:
        return [ToolCall("write_file", {"path": path, "content": after, "mode": "overwrite"})]
    return calls


def codex_patch(diff: str) -> str:
    """A unified diff as the Codex ``*** Begin Patch`` envelope VT Code's ``apply_patch`` takes."""
    from unidiff.patch import PatchSet

    lines = ["*** Begin Patch"]
    for patched in PatchSet(diff):
        path = patched.path
        if patched.is_binary_file:
            continue
        if patched.is_added_file:
            lines.append(f"*** Add File: {path}")
            lines += [f"+{line.value.rstrip(chr(10))}" for hunk in patched for line in hunk if line.is_added]
            continue
        if patched.is_removed_file:
            lines.append(f"*** Delete File: {path}")
            continue
        lines.append(f"*** Update File: {path}")
        for hunk in patched:
            lines.append(f"@@ {hunk.section_header}".rstrip())
            for line in hunk:
                lines.append(f"{line.line_type}{line.value.rstrip(chr(10))}")
    lines.append("*** End Patch")
    return "\n".join(lines) + "\n"


def apply_tool_calls(files: Mapping[str, str], calls: Iterable[ToolCall]) -> dict[str, str]:
    """Re-apply VT Code edit calls to ``files`` (path → text), as VT Code's tools would; other
    tools (tests, reads) change nothing. Raises ``RenderError`` when an edit does not apply."""
    state = dict(files)
    for call in calls:
        args, path = call.arguments, str(call.arguments.get("path", ""))
        if call.name == "edit_file":
            current = state.get(path)
            if current is None or current.count(args["old_str"]) != 1:
                raise RenderError(f"edit_file {path}: old_str is not unique in the file")
            state[path] = current.replace(args["old_str"], args["new_str"], 1)
        elif call.name in ("create_file", "write_file"):
            state[path] = args["content"]
        elif call.name == "delete_file":
            state.pop(path, None)
        elif call.name == "apply_patch":
            raise RenderError("apply_patch bodies are not re-applied here (no before-state)")
    return state


# --- records → messages → text -----------------------------------------------------------------


def _call_json(call: ToolCall) -> str:
    # "</" is escaped as "<\/" (the same JSON string) so a file holding "</tool_call>" cannot end the tag
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return body.replace("</", "<\\/")


def record_calls(record: Mapping[str, Any]) -> list[ToolCall]:
    """The edit calls of a record: per file (sorted by path) when contents are known, else one
    ``apply_patch`` of its diff."""
    files = record.get("files") or []
    if files:
        calls: list[ToolCall] = []
        for item in sorted(files, key=lambda f: f["path"]):
            calls += file_edits(item["path"], item.get("before"), item.get("after"))
        return calls
    if record.get("edits"):
        return [ToolCall(e["name"], dict(e["arguments"])) for e in record["edits"]]
    diff = record.get("diff") or ""
    return [ToolCall("apply_patch", {"input": codex_patch(diff)})] if diff.strip() else []


def messages_for(record: Mapping[str, Any]) -> list[Message]:
    """The record as chat messages in VT Code's tool format (OpenAI's shape: ``tool_calls`` on the
    assistant turn, one ``tool`` message per call)."""
    calls = record_calls(record)
    if not calls:
        raise RenderError("the record changes nothing")
    messages: list[Message] = [{"role": "user", "content": str(record["instruction"]).strip()}]
    reasoning = (record.get("reasoning") or "").strip()
    content = f"<think>\n{reasoning}\n</think>" if reasoning else ""
    messages.append({"role": "assistant", "content": content, "tool_calls": _openai_calls(calls, "edit")})
    for index, call in enumerate(calls):
        result = {"success": True, "path": call.arguments.get("path")}
        if call.name == "apply_patch":
            result = {"success": True}
        messages.append({"role": "tool", "tool_call_id": f"edit-{index}", "content": json.dumps(result)})
    tests = record.get("tests")
    if tests:
        run = ToolCall(TEST_TOOL, {"command": tests["command"]})
        messages.append({"role": "assistant", "content": "", "tool_calls": _openai_calls([run], "test")})
        messages.append({"role": "tool", "tool_call_id": "test-0", "content": str(tests["outcome"]).strip()})
    return messages


def _openai_calls(calls: Sequence[ToolCall], prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
        }
        for i, c in enumerate(calls)
    ]


def chatml(messages: Sequence[Message]) -> str:
    """Messages as ChatML text, tool calls inline as ``<tool_call>{…}</tool_call>``."""
    parts = []
    for message in messages:
        body = [message.get("content") or ""] if message.get("content") else []
        for call in message.get("tool_calls") or []:
            function = call["function"]
            arguments = json.loads(function["arguments"])
            body.append(f"<tool_call>{_call_json(ToolCall(function['name'], arguments))}</tool_call>")
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
    """Raise ``RenderError`` unless the text's edits, re-applied, give the record's after-state."""
    files = record.get("files") or []
    if not files:
        return
    before = {f["path"]: f["before"] for f in files if f.get("before") is not None}
    after = {f["path"]: f["after"] for f in files if f.get("after") is not None}
    if apply_tool_calls(before, tool_calls_in(text)) != after:
        raise RenderError("re-applying the rendered edits does not give the after-state")


# --- curated rollouts (the SFT data) ----------------------------------------------------------------


def rollout_record(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A curated SFT example (``sft_examples`` row: ``messages`` with a SEARCH/REPLACE answer) as a
    record; None when its answer holds no edit block."""
    messages = list(row.get("messages") or [])
    users = [m for m in messages if m.get("role") == "user"]
    answers = [m for m in messages if m.get("role") == "assistant"]
    if not users or not answers:
        return None
    split = split_reasoning(answers[-1].get("content") or "")
    _, blocks = parse_blocks(split.answer)
    if not blocks:
        return None
    edits = []
    for block in blocks:
        search = "".join(f"{line}\n" for line in block.search)
        replace = "".join(f"{line}\n" for line in block.replace)
        if not search.strip():
            edits.append({"name": "create_file", "arguments": {"path": block.path, "content": replace}})
        else:
            args = {"path": block.path, "old_str": search, "new_str": replace}
            edits.append({"name": "edit_file", "arguments": args})
    instruction = str(users[-1].get("content") or "").replace(EDIT_FORMAT, "").strip()
    tests = None
    f2p = [str(t) for t in row.get("fail_to_pass") or []]
    if f2p:
        tests = {
            "command": "python -m pytest -q " + " ".join(f2p),
            "outcome": f"{len(f2p)} passed (FAIL_TO_PASS: {', '.join(f2p)})",
        }
    return {
        "id": f"warehouse:{row.get('example_id') or row.get('rollout_id')}",
        "source": "warehouse",
        "synthetic": bool(row.get("synthetic")),
        "repo": str(row.get("repo") or ""),
        "origin": f"rollout:{row.get('rollout_id')}",
        "license": row.get("license"),
        "instruction": instruction,
        "reasoning": split.reasoning,
        "edits": edits,
        "tests": tests,
    }
