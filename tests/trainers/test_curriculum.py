"""Curriculum transitions: start on medium, hard tasks return once success is stable, easy ones stay."""

from __future__ import annotations

import pytest

from vtforge.config import CurriculumConfig
from vtforge.trainers.curriculum import Curriculum, bucket_of


def _prompts(easy: int = 4, medium: int = 4, hard: int = 4) -> list[dict]:
    rows = []
    for bucket, n in (("easy", easy), ("medium", medium), ("hard", hard)):
        rows += [
            {
                "task_id": f"{bucket}{i}",
                "prompt": [{"role": "user", "content": "x"}],
                "difficulty_bucket": bucket,
            }
            for i in range(n)
        ]
    return rows


def _cfg(**levers) -> CurriculumConfig:
    base = {
        "hard_return_stable_steps": 3,
        "hard_return_min_success": 0.5,
        "stability_tolerance": 0.1,
        "easy_keep_fraction": 0.0,
        "replay_mix_fraction": 0.0,
    }
    return CurriculumConfig(**{**base, **levers})


def _steps(curriculum: Curriculum, rates: list[float], group: int = 10) -> None:
    for rate in rates:
        wins = round(rate * group)
        curriculum.observe([1.0] * wins + [0.0] * (group - wins))
        curriculum.end_step()


def test_starts_on_medium_only() -> None:
    c = Curriculum(_cfg(), _prompts())
    assert c.active == ["medium"]
    assert {c.draw(i)["difficulty_bucket"] for i in range(40)} == {"medium"}


def test_hard_returns_after_stable_success_at_the_threshold() -> None:
    c = Curriculum(_cfg(), _prompts())
    _steps(c, [0.6, 0.6, 0.6, 0.6])  # the window fills at step 3: two rolling values so far
    assert c.active == ["medium"] and c.rolling_success == pytest.approx(0.6)
    _steps(c, [0.6])  # the third stable rolling value
    assert c.active == ["medium", "hard"]
    added = [h for h in c.history if h["event"] == "hard_added"]
    assert len(added) == 1 and added[0]["step"] == 5 and added[0]["rolling_success"] == pytest.approx(0.6)
    assert "hard" in {c.draw(i)["difficulty_bucket"] for i in range(100, 160)}


def test_hard_stays_out_while_success_is_low_or_unstable() -> None:
    low = Curriculum(_cfg(), _prompts())
    _steps(low, [0.3] * 10)
    assert low.active == ["medium"]
    unstable = Curriculum(_cfg(), _prompts())
    _steps(unstable, [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] * 3)
    assert unstable.active == ["medium"]


def test_steps_without_observations_do_not_count() -> None:
    c = Curriculum(_cfg(), _prompts())
    for _ in range(10):
        c.end_step()
    assert c.rolling_success is None and c.active == ["medium"]


def test_easier_tasks_are_kept_at_their_share() -> None:
    c = Curriculum(_cfg(easy_keep_fraction=0.25), _prompts())
    buckets = [c.draw(i)["difficulty_bucket"] for i in range(2000)]
    share = buckets.count("easy") / len(buckets)
    assert 0.2 < share < 0.3 and "hard" not in buckets


def test_replay_slots_follow_the_mix_fraction() -> None:
    replay = [
        {
            "task_id": "medium0",
            "prompt": [{"role": "user", "content": "x"}],
            "replay_completion": "fix",
            "replay_reward": 1.0,
        }
    ]
    c = Curriculum(_cfg(replay_mix_fraction=0.25), _prompts(), replay, policy_version="grpo-x")
    draws = [c.draw(i) for i in range(100)]
    assert sum(d["draw"] == "replay" for d in draws) == 25
    assert all(d["policy_version"] == "grpo-x" for d in draws)
    assert c.draw(3) is draws[3]  # a slot is drawn once


def test_empty_start_bucket_falls_back_and_says_so() -> None:
    c = Curriculum(_cfg(), _prompts(medium=0))
    assert c.active == ["easy"]
    assert c.history[0] == {"step": 0, "event": "start_bucket_empty", "wanted": "medium", "using": "easy"}


def test_bucket_from_baseline_success_when_unlabelled() -> None:
    assert bucket_of({"baseline_success_rate": 0.8}, 0.7, 0.1) == "easy"
    assert bucket_of({"baseline_success_rate": 0.11}, 0.7, 0.1) == "medium"
    assert bucket_of({"baseline_success_rate": 0.10}, 0.7, 0.1) == "hard"
