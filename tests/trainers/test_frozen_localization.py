"""Localization is frozen in RL: a named policy's files reach rl_prompts and GRPO trains on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.warehouse.conftest import emit
from tests.warehouse.rl_stream import A, B, E, rl_stream
from vtforge.trainers.frozen_localization import FrozenLocalizationError, freeze_localization
from vtforge.trainers.grpo import GrpoOptions, run_grpo
from vtforge.trainers.rewards import BanditReward
from vtforge.trainers.sft import TrainingDataError
from vtforge.warehouse.reader import open_reader
from vtforge.warehouse.refresh import refresh


@pytest.fixture
def filled(cfg):
    emit(cfg, rl_stream())
    refresh(cfg, exports=False)
    return cfg


def _localization(cfg) -> list[tuple]:
    with open_reader(cfg) as con:
        return [
            tuple(r)
            for r in con.execute(
                "SELECT task_id, localized_files, localized_from, localization_policy, prompt_text "
                "FROM rl_prompts WHERE task_id = ?",
                [A],
            ).fetchall()
        ]


def test_the_frozen_policys_files_replace_the_rl_policys_own(filled) -> None:
    cfg = filled
    assert _localization(cfg) == [(A, ["z.py"], "model", "v1", "sys BA2\n\nask BA2")]  # v1's own

    frozen = freeze_localization(cfg, "v0", request="grpo-one")
    assert frozen.files == {A: ["a.py", "x.py"]} and frozen.missing == [B, E]
    assert _localization(cfg) == [(A, ["a.py", "x.py"], "frozen", "v0", "sys BA0\n\nask BA0")]

    freeze_localization(cfg, "v1", request="grpo-two")  # the latest request wins …
    assert _localization(cfg) == [(A, ["z.py"], "frozen", "v1", "sys BA2\n\nask BA2")]
    freeze_localization(cfg, "v0", request="grpo-three")  # … also when it names an earlier policy again
    assert _localization(cfg)[0][1:4] == (["a.py", "x.py"], "frozen", "v0")


def test_an_unknown_or_silent_policy_is_a_clear_error(filled) -> None:
    with pytest.raises(FrozenLocalizationError, match=r"no such policy version .*known: sft, v0, v1"):
        freeze_localization(filled, "nope", request="r")
    silent = r"sft: the policy has no source-file localization of any of the 3 "
    with pytest.raises(FrozenLocalizationError, match=silent):
        freeze_localization(filled, "sft", request="r")


def test_grpo_trains_on_the_frozen_files(filled) -> None:
    summary = run_grpo(
        filled,
        GrpoOptions(max_steps=1, reward="bandit", frozen_localization="v0", emit_samples=False),
        reward=BanditReward(),
    )
    assert summary["prompts"] == 1  # only A has v0's localization
    assert summary["frozen_localization"] == {
        "policy_version": "v0",
        "tasks": 1,
        "missing": 2,
        "missing_task_ids": [B, E],
    }
    samples = [
        json.loads(x) for x in (Path(summary["final"]).parent / "samples.jsonl").read_text().splitlines()
    ]
    assert {s["task_id"] for s in samples} == {A}
    with open_reader(filled) as con:
        attributes = con.execute(
            "SELECT envelope.attributes FROM raw_localization_predicted WHERE method = 'frozen'"
        ).fetchone()[0]
    assert dict(attributes) == {
        "policy_version": "v0",
        "source_rollout_id": "LA0",
        "for_run": summary["policy_version"],
        "target": "source",
    }


def test_grpo_without_the_frozen_policys_rows_says_so(filled) -> None:
    with pytest.raises(TrainingDataError, match="sft: the policy has no source-file localization"):
        run_grpo(
            filled,
            GrpoOptions(max_steps=1, reward="bandit", frozen_localization="sft"),
            reward=BanditReward(),
        )
