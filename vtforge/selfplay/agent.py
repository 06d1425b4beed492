"""A policy as a multi-turn agent in the sandbox: the built-in tool loop of the agentic evaluation.

The agentless harness (localize → repair → test → select) asks a policy for one answer per role;
this loop lets it work the way an agent does, one action a turn, and sees what it does:

- ``READ <path>``: the file as it is now (the base commit plus the agent's edits), numbered lines;
- ``EDIT`` followed by SEARCH/REPLACE blocks (self-play's format): applied to the working copy;
- ``TEST``: the task's visible tests (PASS_TO_PASS, the repository's own) run in the sandbox
  with the edits so far; the answer is the counts and the first failures;
- ``DONE``: the edits so far are the answer.

A turn that names no action gets a one-line reminder. The loop stops at ``DONE``, after
``max_turns`` turns (the budget), or when the engine fails; the working copy's diff against the
base is the agent's patch, which the caller grades like any prediction (SWE-bench rules, hidden
FAIL_TO_PASS tests included). VT Code itself (``vtcode exec`` against ``vtforge serve``) is the
other agentic driver; this loop is what runs where the ``vtcode`` binary is not installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vtforge.sandbox.api import RunRequest, Sandbox
from vtforge.selfplay.diffs import diff_of
from vtforge.selfplay.engines.base import Completion, Engine, Message, Request
from vtforge.selfplay.parsing import parse_edit
from vtforge.selfplay.reasoning import split_reasoning
from vtforge.selfplay.task import RepoView, SelfplayTask

ROLE = "agent"
ACTIONS = ("READ", "EDIT", "TEST", "DONE")
ACTION_RE = re.compile(r"^\s*(READ|EDIT|TEST|DONE)\b[ \t]*(.*)$", re.MULTILINE)
MAX_FILE_CHARS = 6000  # a READ shows at most this much of a file
MAX_FAILURES_SHOWN = 5

SYSTEM = (
    "You fix a bug in a Python repository by acting one step at a time. Each reply is exactly one "
    "action, on its own line:\n"
    "READ <path>   show a file\n"
    "EDIT          followed by SEARCH/REPLACE blocks that change files\n"
    "TEST          run the repository's tests with your edits\n"
    "DONE          finish; your edits are your answer\n\n"
    "An EDIT is the line EDIT, then one block per change:\n"
    "### path/to/file.py\n<<<<<<< SEARCH\nlines copied exactly from the file\n=======\n"
    "the lines that replace them\n>>>>>>> REPLACE"
)


@dataclass
class Turn:
    """One exchange: what the policy said, which action it took, and what it saw back."""

    index: int
    completion: Completion
    action: str  # READ | EDIT | TEST | DONE | none | engine_error
    argument: str
    observation: str


@dataclass
class AgentRun:
    """A finished episode: the turns, the patch it left, and why it stopped."""

    task_id: str
    turns: list[Turn] = field(default_factory=list)
    patch: str = ""
    stop: str = "budget"  # done | budget | engine_error
    edited: list[str] = field(default_factory=list)
    tests_run: int = 0


def first_action(text: str) -> tuple[str, str]:
    """The first action line of an answer (reasoning removed): (action, rest of the line)."""
    answer = split_reasoning(text).answer
    found = ACTION_RE.search(answer)
    return (found.group(1), found.group(2).strip()) if found else ("none", "")


class WorkingCopy:
    """The base commit's files with the agent's edits on top (only what changed is kept)."""

    def __init__(self, view: RepoView) -> None:
        self.view = view
        self.changed: dict[str, str | None] = {}

    def read(self, path: str) -> str | None:
        return self.changed[path] if path in self.changed else self.view.read(path)

    @property
    def tree(self) -> list[str]:
        return sorted(set(self.view.tree) | {p for p, c in self.changed.items() if c is not None})

    def diff(self) -> str:
        old = {p: self.view.read(p) for p in self.changed}
        new = {p: c for p, c in self.changed.items() if c != old[p]}
        return diff_of(old, new) if new else ""


def _numbered(text: str) -> str:
    clipped = text[:MAX_FILE_CHARS]
    lines = [f"{n:4d}  {line}" for n, line in enumerate(clipped.splitlines(), start=1)]
    more = f"\n… ({len(text) - MAX_FILE_CHARS} more characters)" if len(text) > MAX_FILE_CHARS else ""
    return "\n".join(lines) + more


def run_agent(
    task: SelfplayTask,
    engine: Engine,
    box: Sandbox,
    *,
    max_turns: int,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    on_turn: Callable[[Turn], None] | None = None,
) -> AgentRun:
    """One episode of ``task`` with at most ``max_turns`` policy turns of ``max_tokens`` each."""
    view = RepoView(task.repo_dir, task.base_commit)
    copy = WorkingCopy(view)
    run = AgentRun(task.task_id)
    prepared: list[Any] = []
    files = "\n".join(view.tree[:200])
    chat: list[Message] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Issue:\n{task.problem_statement}\n\nFiles:\n{files}"},
    ]
    for index in range(max_turns):
        request = Request(
            messages=list(chat),
            temperature=temperature,
            max_tokens=max_tokens,
            task_id=task.task_id,
            role=ROLE,
            sample_index=index,
            seed=seed + index,
        )
        (completion,) = engine.generate([request])
        if completion.error:
            turn = Turn(index, completion, "engine_error", "", completion.error)
            run.turns.append(turn)
            run.stop = "engine_error"
            if on_turn is not None:
                on_turn(turn)
            break
        action, argument = first_action(completion.text)
        observation = _act(action, argument, completion.text, copy, task, box, prepared, run)
        turn = Turn(index, completion, action, argument, observation)
        run.turns.append(turn)
        if on_turn is not None:
            on_turn(turn)
        if action == "DONE":
            run.stop = "done"
            break
        chat += [{"role": "assistant", "content": completion.text}, {"role": "user", "content": observation}]
    run.patch = copy.diff()
    run.edited = sorted(p for p in copy.changed if copy.changed[p] != view.read(p))
    return run


def _act(
    action: str,
    argument: str,
    text: str,
    copy: WorkingCopy,
    task: SelfplayTask,
    box: Sandbox,
    prepared: list[Any],
    run: AgentRun,
) -> str:
    """Carry out one action on the working copy; the observation the policy sees next."""
    if action == "READ":
        path = argument.split()[0] if argument else ""
        content = copy.read(path) if path else None
        return _numbered(content) if content is not None else f"no such file: {path or '(no path)'}"
    if action == "EDIT":
        edit = parse_edit(text, copy.read, copy.tree, scope=task.task_id)
        if edit.status != "ok":
            return f"edit not applied: {edit.status}{' (' + edit.detail + ')' if edit.detail else ''}"
        copy.changed.update(edit.new)
        return f"edited {', '.join(sorted(edit.new))}"
    if action == "TEST":
        if not prepared:
            prepared.append(box.prepare(task.repo_spec()))
        if not prepared[0].ok:
            return f"the tests cannot run here: {prepared[0].setup_log[-300:]}"
        patch = copy.diff()
        result = box.run(
            prepared[0],
            RunRequest(patches=[patch] if patch else [], tests=list(task.pass_to_pass) or None, label=ROLE),
        )
        run.tests_run += 1
        if not result.patch_applied:
            return f"your edits do not apply: {'; '.join(result.apply_errors)[:300]}"
        failed = sorted(result.failed())
        shown = "".join(f"\nFAILED {name}" for name in failed[:MAX_FAILURES_SHOWN])
        return f"{len(result.passed())} passed, {len(failed)} failed ({result.status}){shown}"
    if action == "DONE":
        return "done"
    return f"no action found: start a line with one of {', '.join(ACTIONS)}"
