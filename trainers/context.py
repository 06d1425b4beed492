"""The context budget (``forge.context.train_tokens``) and the truncation policy that enforces it.

The answer is never cut. ``drop_oldest_context`` removes whole context turns, oldest first, keeping
the leading system messages, the last user turn and the answer; when even that does not fit, the
row is skipped. ``skip`` skips every row over budget. Every decision is returned as a ``Fit`` so
the reader can record what it did (counts in the training-step events, one line per changed row in
the run's ``truncation.jsonl``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Message = dict[str, str]
Action = Literal["kept", "dropped_turns", "skipped"]


@dataclass(frozen=True)
class Fit:
    """What the policy did to one row."""

    messages: list[Message] | None  # None when the row was skipped
    action: Action
    tokens_before: int
    tokens_after: int
    turns_dropped: int = 0
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def render(tokenizer: Any, messages: list[Message], *, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def count_tokens(tokenizer: Any, messages: list[Message], *, add_generation_prompt: bool = False) -> int:
    text = render(tokenizer, messages, add_generation_prompt=add_generation_prompt)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _protected_split(messages: list[Message], has_answer: bool) -> tuple[int, int]:
    """(first droppable, first protected tail index): head = system turns, tail = last user (+ answer)."""
    head = 0
    while head < len(messages) and messages[head]["role"] == "system":
        head += 1
    end = len(messages) - 1 if has_answer else len(messages)
    tail = end
    for i in range(end - 1, head - 1, -1):
        if messages[i]["role"] == "user":
            tail = i
            break
    return head, tail


def fit_messages(
    tokenizer: Any,
    messages: list[Message],
    *,
    budget: int,
    policy: str,
    has_answer: bool = True,
    reserve: int = 0,
) -> Fit:
    """Fit ``messages`` into ``budget - reserve`` tokens without touching the answer (the last turn).

    ``has_answer=False`` is for prompts (GRPO): ``reserve`` keeps room for the completion and the
    generation prompt is counted.
    """
    limit = budget - reserve
    gen = not has_answer
    before = count_tokens(tokenizer, messages, add_generation_prompt=gen)
    if before <= limit:
        return Fit(messages, "kept", before, before)
    # A skipped row records ``extra["min_tokens"]``: the fewest tokens the policy could cut it to,
    # so an error can say how much room the shortest row needs.
    if policy == "skip":
        return Fit(
            None,
            "skipped",
            before,
            0,
            reason=f"{before} tokens > budget {limit}",
            extra={"min_tokens": before},
        )
    if policy != "drop_oldest_context":
        raise ValueError(f"unknown truncation policy {policy!r}")
    head, tail = _protected_split(messages, has_answer)
    droppable = tail - head
    if droppable <= 0:
        return Fit(
            None,
            "skipped",
            before,
            0,
            reason=f"{before} tokens > budget {limit}; no context turn to drop",
            extra={"min_tokens": before},
        )

    def with_dropped(k: int) -> list[Message]:
        return messages[:head] + messages[head + k :]

    # Fewer turns never means more tokens, so binary-search the smallest k that fits.
    lo, hi = 1, droppable
    fewest = count_tokens(tokenizer, with_dropped(hi), add_generation_prompt=gen)
    if fewest > limit:
        return Fit(
            None,
            "skipped",
            before,
            0,
            reason=f"over budget {limit} even with all {droppable} context turns dropped",
            extra={"min_tokens": fewest},
        )
    while lo < hi:
        mid = (lo + hi) // 2
        if count_tokens(tokenizer, with_dropped(mid), add_generation_prompt=gen) <= limit:
            hi = mid
        else:
            lo = mid + 1
    kept = with_dropped(lo)
    after = count_tokens(tokenizer, kept, add_generation_prompt=gen)
    return Fit(kept, "dropped_turns", before, after, turns_dropped=lo)
