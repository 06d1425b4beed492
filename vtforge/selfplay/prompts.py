"""Prompts for the four self-play roles, shaped after Kimi-Dev and Agentless.

Every prompt is a short system message plus one user message; the wording is ours.

Every prompt fits ``budget_tokens`` (the caller passes the model's window minus the completion's
``max_tokens``). What a prompt shows of the repository — file contents (BugFixer, TestWriter,
synthesis), candidate diffs (synthesis), the file list (localization) — is its *clippable* part;
the issue is clipped apart to at most half the budget. The whole prompt is measured with ``count``
(the engine's tokenizer, chat template included) when one is given, else estimated at
``CHARS_PER_TOKEN`` characters a token plus a few tokens a message; when it is over budget the
clippable part is cut by bisection to the largest size that fits. Files share the allowance
fairly: a file shorter than its share is shown whole, and what it leaves goes to the others; a cut
file keeps its head and says that it was clipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Message = dict[str, str]
TokenCounter = Callable[[list[Message]], "int | None"]

CHARS_PER_TOKEN = 2  # conservative: SmolLM2 reads 2.4-4.5 (median 3.3) characters a token in Python files
MESSAGE_OVERHEAD_TOKENS = 8  # chat-template tokens around each message (role markers, separators)
CLIPPED = "\n# ... (file clipped to fit the context)\n"
DIFF_CLIPPED = "\n... (diff clipped to fit the context)\n"

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


def estimate_tokens(messages: Sequence[Message]) -> int:
    """A conservative token count for a prompt when no tokenizer is at hand."""
    chars = sum(len(m["content"]) for m in messages)
    return -(-chars // CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * (len(messages) + 1)


def fit(
    build: Callable[[int], list[Message]],
    full: int,
    budget_tokens: int,
    count: TokenCounter | None = None,
) -> list[Message]:
    """``build(allowance)`` for the largest ``allowance`` ≤ ``full`` (characters of the clippable part)
    whose prompt fits ``budget_tokens``; ``build(0)`` when nothing fits (the engine then refuses it)."""

    def measure(messages: list[Message]) -> int:
        counted = count(messages) if count is not None else None
        return estimate_tokens(messages) if counted is None else counted

    messages = build(full)
    if measure(messages) <= budget_tokens:
        return messages
    low, high, best = 0, full, None  # invariant: build(high) does not fit
    while high - low > max(16, full // 1000):
        mid = (low + high) // 2
        candidate = build(mid)
        if measure(candidate) <= budget_tokens:
            low, best = mid, candidate
        else:
            high = mid
    return best if best is not None else build(low)


def _clip_issue(problem: str, budget_tokens: int) -> str:
    limit = max(200, budget_tokens * CHARS_PER_TOKEN // 2)
    problem = problem.strip()
    return problem if len(problem) <= limit else problem[:limit] + "\n... (issue clipped to fit the context)"


def _tree_block(paths: Sequence[str], budget_chars: int, limit: int = 2000) -> str:
    """The file list, as many paths as fit ``budget_chars`` (at most ``limit``), then how many are left."""
    shown: list[str] = []
    used = 0
    for path in list(paths)[:limit]:
        if used + len(path) + 1 > budget_chars:
            break
        shown.append(path)
        used += len(path) + 1
    more = f"\n... and {len(paths) - len(shown)} more files" if len(shown) < len(paths) else ""
    return "\n".join(shown) + more


def _shares(sizes: Sequence[int], budget_chars: int) -> list[int]:
    """Fair shares of ``budget_chars``: an item under its share keeps its size, the rest share the rest."""
    shares = [0] * len(sizes)
    left, pending = max(0, budget_chars), sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    while pending:
        share = left // len(pending)
        i = pending.pop(0)
        shares[i] = min(sizes[i], share)
        left -= shares[i]
    return shares


def _clip(text: str, chars: int, marker: str = CLIPPED) -> str:
    return text if len(text) <= chars else text[:chars] + marker


def _files_block(files: Mapping[str, str | None], budget_chars: int) -> str:
    """Files in code fences, clipped so that their contents together take at most ``budget_chars``."""
    items = [(p, c or "") for p, c in files.items()]
    shares = _shares([len(c) for _, c in items], budget_chars)
    return "\n\n".join(
        f"### {path}\n```python\n{_clip(content, share)}\n```"
        for (path, content), share in zip(items, shares, strict=True)
    )


def _file_chars(files: Mapping[str, str | None]) -> int:
    return sum(len(c or "") for c in files.values())


def localization_messages(
    problem: str,
    tree: Sequence[str],
    *,
    kind: str,
    limit: int,
    budget_tokens: int | None = None,
    count: TokenCounter | None = None,
) -> list[Message]:
    """``kind`` = ``source`` (files to fix) or ``test`` (the test file to extend); the file list is
    cut to fit ``budget_tokens`` (no budget: the first 2,000 paths)."""
    what = (
        "the source files that must be edited to fix it"
        if kind == "source"
        else "the existing test file where a test reproducing it belongs"
    )
    issue = problem.strip() if budget_tokens is None else _clip_issue(problem, budget_tokens)

    def build(chars: int) -> list[Message]:
        user = (
            f"Issue:\n{issue}\n\nRepository files:\n{_tree_block(tree, chars)}\n\n"
            f"List at most {limit} paths of {what}, one per line, most important first, "
            "exactly as they appear above, and nothing else."
        )
        return [{"role": "system", "content": SYSTEM["localizer"]}, {"role": "user", "content": user}]

    full = sum(len(p) + 1 for p in list(tree)[:2000])
    return build(full) if budget_tokens is None else fit(build, full, budget_tokens, count)


def bugfixer_messages(
    problem: str,
    files: Mapping[str, str | None],
    *,
    budget_tokens: int,
    counterexamples: Sequence[str] = (),
    count: TokenCounter | None = None,
) -> list[Message]:
    hint = ""
    if counterexamples:
        hint = "\n\nEarlier fixes passed their own tests but still failed these tests:\n" + "\n".join(
            f"- {t}" for t in counterexamples
        )
    issue = _clip_issue(problem, budget_tokens)

    def build(chars: int) -> list[Message]:
        user = (
            f"Issue:\n{issue}{hint}\n\nRelevant files:\n\n{_files_block(files, chars)}\n\n"
            f"Fix the issue.\n\n{EDIT_FORMAT}"
        )
        return [{"role": "system", "content": SYSTEM["bugfixer"]}, {"role": "user", "content": user}]

    return fit(build, _file_chars(files), budget_tokens, count)


def testwriter_messages(
    problem: str, files: Mapping[str, str | None], *, budget_tokens: int, count: TokenCounter | None = None
) -> list[Message]:
    issue = _clip_issue(problem, budget_tokens)

    def build(chars: int) -> list[Message]:
        user = (
            f"Issue:\n{issue}\n\nTest file:\n\n{_files_block(files, chars)}\n\n"
            "Add one test function (named test_...) to this file that fails now because of the issue "
            "and passes once it is fixed. Do not change the existing tests.\n\n"
            f"{EDIT_FORMAT}"
        )
        return [{"role": "system", "content": SYSTEM["testwriter"]}, {"role": "user", "content": user}]

    return fit(build, _file_chars(files), budget_tokens, count)


def synthesis_messages(
    problem: str,
    files: Mapping[str, str | None],
    candidates: Sequence[Mapping[str, Any]],
    *,
    budget_tokens: int,
    count: TokenCounter | None = None,
) -> list[Message]:
    """``candidates``: dicts with ``diff``, ``test_pass_rate``, ``regression_safety``, ``votes``.

    The allowance goes to the files and the diffs in proportion to their sizes, diffs sharing theirs
    fairly (a clipped diff says so)."""
    issue = _clip_issue(problem, budget_tokens)
    diffs = [str(c["diff"]) for c in candidates]
    file_chars, diff_chars = _file_chars(files), sum(len(d) for d in diffs)

    def build(chars: int) -> list[Message]:
        for_files = chars * file_chars // max(1, file_chars + diff_chars)
        diff_shares = _shares([len(d) for d in diffs], chars - for_files)
        shown = []
        for i, (c, diff, share) in enumerate(zip(candidates, diffs, diff_shares, strict=True), start=1):
            shown.append(
                f"Candidate {i} (passes {c['test_pass_rate']:.0%} of the reproduction tests, "
                f"keeps {c['regression_safety']:.0%} of the passing tests, proposed {c['votes']} times):\n"
                f"```diff\n{_clip(diff, share, DIFF_CLIPPED)}```"
            )
        user = (
            f"Issue:\n{issue}\n\nFiles:\n\n{_files_block(files, for_files)}\n\n"
            + "\n\n".join(shown)
            + f"\n\nWrite the final fix, combining what the best candidates got right.\n\n{EDIT_FORMAT}"
        )
        return [{"role": "system", "content": SYSTEM["synthesis"]}, {"role": "user", "content": user}]

    return fit(build, file_chars + diff_chars, budget_tokens, count)
