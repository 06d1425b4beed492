"""GRPO's completion budget: the default levers leave a tiny model room for a real prompt, and a budget
that leaves none is an error naming the lever and what would fit."""

from __future__ import annotations

import duckdb
import pytest

from vtforge.config import load_config
from vtforge.fixtures.warehouse import create_tables
from vtforge.selfplay import prompts
from vtforge.trainers.context import count_tokens
from vtforge.trainers.grpo import GrpoOptions, completion_budget, no_room_message, run_grpo
from vtforge.trainers.readers import prompt_messages
from vtforge.trainers.rewards import BanditReward
from vtforge.trainers.sft import TrainingDataError
from vtforge.trainers.tiny import train_tokenizer


def _module(functions: int) -> str:
    return "\n\n".join(
        f"def function_{i}(items, default=None):\n"
        f'    """Return item {i} of ``items`` shifted by {i}, or ``default`` when there are none."""\n'
        f"    if not items:\n        return default\n    return items[{i} % len(items)] + {i}\n"
        for i in range(functions)
    )


def _warehouse(cfg, functions: int) -> list[dict]:
    """rl_prompts with one measured task whose prompt is self-play's BugFixer prompt for one file."""
    messages = prompts.bugfixer_messages(
        "function_7 returns the wrong item when the list is shorter than 8.",
        {"pkg/functions.py": _module(functions)},
        budget_tokens=cfg.forge.context.inference_tokens,
    )
    cfg.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(cfg.duckdb_path))
    create_tables(con)
    con.execute(
        "INSERT INTO rl_prompts VALUES ('pkg__functions-1', ?, ?, 'org/pkg', 'c0ffee', "
        "['tests/test_f.py::test_7'], [], ['pkg/functions.py'], 0.3, 'medium', 'train')",
        [messages, "\n\n".join(m["content"] for m in messages)],
    )
    con.close()
    return messages


def _tokens(messages: list[dict]) -> int:
    """The prompt's length as the run's tiny tokenizer (trained on the run's own prompts) counts it."""
    tok = train_tokenizer([m["content"] for m in prompt_messages({"prompt": messages})])
    return count_tokens(tok, messages, add_generation_prompt=True)


def test_default_levers_train_a_tiny_model_on_a_real_prompt(workspace) -> None:
    # the budget levers (train_tokens, max_completion_tokens) are the defaults; fewer samples keep it quick
    (workspace / "vtcode.toml").write_text(
        '[forge.warehouse]\ndata_dir = ".forge"\n\n'
        "[forge.train]\ngrpo_prompts_per_step = 1\nnum_generations = 2\n"
    )
    cfg = load_config()
    messages = _warehouse(cfg, functions=40)
    assert 1500 < _tokens(messages) < 3584  # a real file's worth of prompt
    summary = run_grpo(cfg, GrpoOptions(max_steps=1), reward=BanditReward())
    assert (summary["steps"], summary["prompts"]) == (1, 1)
    assert (summary["budget_tokens"], summary["max_completion_tokens"]) == (4096, 512)  # 1024 clamped
    assert summary["truncation"] == {"kept": 1, "dropped_turns": 0, "skipped": 0}


def test_a_completion_budget_that_leaves_no_room_is_named_with_what_fits(workspace) -> None:
    # on the tiny model only a budget given on the command line is taken as it is
    cfg = load_config()
    need = _tokens(_warehouse(cfg, functions=40))
    with pytest.raises(TrainingDataError) as err:
        run_grpo(cfg, GrpoOptions(max_steps=1, max_completion_tokens=4000), reward=BanditReward())
    assert (
        "--max-completion-tokens=4000 leaves 96 of 4096 positions (the model's 4096-position "
        f"window) for prompts; the shortest prompt needs {need}: lower it to ≤ {4096 - need} or use a "
        f"model with ≥ {need + 4000} positions"
    ) in str(err.value)


def test_a_prompt_longer_than_the_window_asks_for_a_bigger_model(workspace) -> None:
    cfg = load_config()
    need = _tokens(_warehouse(cfg, functions=90))
    assert need > 4096
    with pytest.raises(TrainingDataError) as err:
        run_grpo(cfg, GrpoOptions(max_steps=1), reward=BanditReward())
    assert (
        "forge.train.max_completion_tokens=1024 (clamped to 512 for a tiny model) leaves 3584 of 4096 "
        "positions (the model's 4096-position window) for prompts; the shortest prompt needs "
        f"{need}: use a model with ≥ {need + 512} positions"
    ) in str(err.value)


def test_the_tiny_clamp_only_rescues_the_default() -> None:
    assert completion_budget(1024, 1024, explicit=False, tiny=True) == 128
    assert completion_budget(1024, 4096, explicit=False, tiny=True) == 512
    assert completion_budget(1024, 1024, explicit=True, tiny=True) == 1024
    assert completion_budget(1024, 1024, explicit=False, tiny=False) == 1024
    assert completion_budget(1024, 65536, explicit=False, tiny=True) == 1024
    assert no_room_message(
        lever="forge.train.max_completion_tokens",
        completion=1024,
        budget=512,
        window=4096,
        train_tokens=512,
        shortest=300,
    ) == (
        "forge.train.max_completion_tokens=1024 leaves 0 of 512 positions (forge.context.train_tokens=512) "
        "for prompts; the shortest prompt needs 300: lower it to ≤ 212 or raise forge.context.train_tokens "
        "to ≥ 1324"
    )
