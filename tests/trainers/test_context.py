"""The truncation policy: whole context turns go, oldest first; the answer is never cut."""

from __future__ import annotations

import pytest

from vtforge.trainers.context import count_tokens, fit_messages
from vtforge.trainers.tiny import train_tokenizer


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(["hello world " * 20])


def _chat(turns: int, words: int = 20) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are the bugfixer."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"turn {i} " + "word " * words})
        messages.append({"role": "assistant", "content": f"reply {i} " + "word " * words})
    messages.append({"role": "user", "content": "the task itself"})
    messages.append({"role": "assistant", "content": "<think>why</think>the answer"})
    return messages


def test_fits_unchanged(tok) -> None:
    messages = _chat(1)
    fit = fit_messages(tok, messages, budget=10_000, policy="drop_oldest_context")
    assert fit.action == "kept" and fit.messages == messages and fit.turns_dropped == 0


def test_drops_oldest_turns_and_keeps_system_task_and_answer(tok) -> None:
    messages = _chat(4)
    full = count_tokens(tok, messages)
    fit = fit_messages(tok, messages, budget=full - 10, policy="drop_oldest_context")
    assert fit.action == "dropped_turns"
    assert fit.turns_dropped == 1  # the smallest number of turns that fits
    assert fit.messages[0] == messages[0]
    assert fit.messages[1:] == messages[2:]
    assert fit.tokens_after <= full - 10 < fit.tokens_before


def test_answer_never_cut_row_skipped_instead(tok) -> None:
    messages = _chat(3)
    messages[-1]["content"] = "answer " * 300
    fit = fit_messages(tok, messages, budget=100, policy="drop_oldest_context")
    assert fit.action == "skipped" and fit.messages is None
    assert "even with all" in fit.reason


def test_skip_policy_skips_over_budget(tok) -> None:
    messages = _chat(4)
    fit = fit_messages(tok, messages, budget=count_tokens(tok, messages) - 1, policy="skip")
    assert fit.action == "skipped"


def test_prompt_mode_reserves_room_for_the_completion(tok) -> None:
    prompt = _chat(4)[:-1]
    size = count_tokens(tok, prompt, add_generation_prompt=True)
    assert fit_messages(tok, prompt, budget=size, policy="skip", has_answer=False).action == "kept"
    fit = fit_messages(tok, prompt, budget=size, policy="drop_oldest_context", has_answer=False, reserve=30)
    assert fit.action == "dropped_turns"
    assert fit.messages[-1] == prompt[-1]
    assert fit.tokens_after <= size - 30
