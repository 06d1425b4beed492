"""Prompts for the four self-play roles, shaped after Kimi-Dev and Agentless.

Every prompt is a short system message plus one user message; the wording is ours. File contents
are clipped to the inference context budget (about 4 characters a token), longest files first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CHARS_PER_TOKEN = 4

EDIT_FORMAT = """Answer with SEARCH/REPLACE edits only, one block per change:

### path/to/file.py
<<<<<<< SEARCH
lines copied exactly from the file, indentation included
=======
the lines that replace them
>>>>>>> REPLACE

Keep each SEARCH short but unique in its file. Think first inside <think>...</think> if you wish;
only the blocks after it are applied."""

SYSTEM = {
    "localizer": "You locate the files of a Python repository that must change to resolve an issue.",
    "bugfixer": "You fix bugs in Python repositories by editing the source files you are shown.",
    "testwriter": (
        "You write one pytest test that reproduces an issue: it must fail on the current code and "
        "pass once the issue is fixed."
    ),
    "synthesis": (
        "You review candidate fixes for an issue together with how they did on tests, and write the "
        "single best final fix."
    ),
}

Message = dict[str, str]


def _tree_block(paths: Sequence[str], limit: int = 2000) -> str:
    shown = list(paths)[:limit]
    more = f"\n... and {len(paths) - limit} more files" if len(paths) > limit else ""
    return "\n".join(shown) + more


def _files_block(files: Mapping[str, str | None], budget_chars: int) -> str:
    """Files in code fences, each clipped so that together they fit ``budget_chars``."""
    items = [(p, c or "") for p, c in files.items()]
    share = max(2000, budget_chars // max(1, len(items)))
    out = []
    for path, content in items:
        if len(content) > share:
            content = content[:share] + "\n# ... (file clipped to fit the context)\n"
        out.append(f"### {path}\n```python\n{content}\n```")
    return "\n\n".join(out)


def localization_messages(problem: str, tree: Sequence[str], *, kind: str, limit: int) -> list[Message]:
    """``kind`` = ``source`` (files to fix) or ``test`` (the test file to extend)."""
    what = (
        "the source files that must be edited to fix it"
        if kind == "source"
        else "the existing test file where a test reproducing it belongs"
    )
    user = (
        f"Issue:\n{problem.strip()}\n\nRepository files:\n{_tree_block(tree)}\n\n"
        f"List at most {limit} paths of {what}, one per line, most important first, "
        "exactly as they appear above, and nothing else."
    )
    return [{"role": "system", "content": SYSTEM["localizer"]}, {"role": "user", "content": user}]


def bugfixer_messages(
    problem: str, files: Mapping[str, str | None], *, budget_tokens: int, counterexamples: Sequence[str] = ()
) -> list[Message]:
    hint = ""
    if counterexamples:
        hint = "\n\nEarlier fixes passed their own tests but still failed these tests:\n" + "\n".join(
            f"- {t}" for t in counterexamples
        )
    user = (
        f"Issue:\n{problem.strip()}{hint}\n\nRelevant files:\n\n"
        f"{_files_block(files, budget_tokens * CHARS_PER_TOKEN // 2)}\n\n"
        f"Fix the issue.\n\n{EDIT_FORMAT}"
    )
    return [{"role": "system", "content": SYSTEM["bugfixer"]}, {"role": "user", "content": user}]


def testwriter_messages(
    problem: str, files: Mapping[str, str | None], *, budget_tokens: int
) -> list[Message]:
    user = (
        f"Issue:\n{problem.strip()}\n\nTest file:\n\n"
        f"{_files_block(files, budget_tokens * CHARS_PER_TOKEN // 2)}\n\n"
        "Add one test function (named test_...) to this file that fails now because of the issue "
        "and passes once it is fixed. Do not change the existing tests.\n\n"
        f"{EDIT_FORMAT}"
    )
    return [{"role": "system", "content": SYSTEM["testwriter"]}, {"role": "user", "content": user}]


def synthesis_messages(
    problem: str,
    files: Mapping[str, str | None],
    candidates: Sequence[Mapping[str, Any]],
    *,
    budget_tokens: int,
) -> list[Message]:
    """``candidates``: dicts with ``diff``, ``test_pass_rate``, ``regression_safety``, ``votes``."""
    shown = []
    for i, c in enumerate(candidates, start=1):
        shown.append(
            f"Candidate {i} (passes {c['test_pass_rate']:.0%} of the reproduction tests, "
            f"keeps {c['regression_safety']:.0%} of the passing tests, proposed {c['votes']} times):\n"
            f"```diff\n{c['diff']}```"
        )
    user = (
        f"Issue:\n{problem.strip()}\n\nFiles:\n\n"
        f"{_files_block(files, budget_tokens * CHARS_PER_TOKEN // 3)}\n\n"
        + "\n\n".join(shown)
        + f"\n\nWrite the final fix, combining what the best candidates got right.\n\n{EDIT_FORMAT}"
    )
    return [{"role": "system", "content": SYSTEM["synthesis"]}, {"role": "user", "content": user}]
