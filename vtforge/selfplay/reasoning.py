"""Reasoning markers: kept in the trace, stripped before anything is parsed or applied.

Models wrap their thinking in different markers (``<think>``, ``<thinking>``, ``<reasoning>``,
Kimi's ``◁think▷``, ``<|begin_of_thought|>``). Chat templates that open ``<think>`` inside the
prompt leave only a closing marker in the completion, so a lone closer ends the reasoning too.
Edits written inside the reasoning are never applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKERS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("<reasoning>", "</reasoning>"),
    ("◁think▷", "◁/think▷"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
)


@dataclass(frozen=True)
class Split:
    """A completion cut into its reasoning and its answer."""

    reasoning: str | None
    answer: str
    unterminated: bool = False  # a reasoning block that never closed: the answer is empty


def split_reasoning(text: str) -> Split:
    """Separate every reasoning block from the answer (case-insensitive markers)."""
    parts: list[str] = []
    answer = text or ""
    unterminated = False
    for opener, closer in MARKERS:
        o, c = re.escape(opener), re.escape(closer)
        # a closer with no opener before it: everything up to it is reasoning
        lone = re.match(rf"(?is)^(?:(?!{o}).)*?{c}", answer)
        if lone:
            parts.append(answer[: lone.end() - len(closer)].strip())
            answer = answer[lone.end() :]
        for match in list(re.finditer(rf"(?is){o}(.*?){c}", answer)):
            parts.append(match.group(1).strip())
        answer = re.sub(rf"(?is){o}.*?{c}", "", answer)
        opened = re.search(rf"(?is){o}", answer)
        if opened:  # opened and never closed
            parts.append(answer[opened.end() :].strip())
            answer = answer[: opened.start()]
            unterminated = True
    reasoning = "\n\n".join(p for p in parts if p) or None
    return Split(reasoning=reasoning, answer=answer.strip("\n"), unterminated=unterminated)
