"""GRPO on a tiny model: a bandit check, zero-variance filtering, replay, events and the reward."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import torch

from tests.trainers.conftest import write_levers
from vtforge.fixtures.warehouse import build_warehouse
from vtforge.trainers.grpo import GrpoOptions, run_grpo, zero_variance_rows
from vtforge.trainers.rewards import BanditReward, as_trl_reward, extract_patch
from vtforge.trainers.tiny import tiny_model, train_tokenizer


def _save_tiny(folder: Path, texts: list[str]) -> Path:
    tok = train_tokenizer(texts)
    model = tiny_model(tok, seed=1)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _prompts(cfg) -> list[list[dict]]:
    con = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    rows = con.execute("SELECT prompt FROM rl_prompts ORDER BY task_id").fetchall()
    con.close()
    return [r[0] for r in rows]


def _rewarded_mass(folder: Path, prompts: list[list[dict]], reward: BanditReward) -> float:
    """Mean probability that the first generated token earns the bandit's reward."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    rewarded = torch.tensor([reward(tok.decode([i], skip_special_tokens=True), {}) for i in range(len(tok))])
    masses = []
    for messages in prompts:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            probs = model(input_ids=ids).logits[0, -1].softmax(-1)
        masses.append(float((probs * rewarded).sum()))
    return sum(masses) / len(masses)


def test_one_grpo_update_moves_the_policy_towards_rewarded_samples(cfg, tmp_path: Path) -> None:
    """Reward half the vocabulary's first letters, then the other half: the update follows the reward."""
    build_warehouse(cfg.duckdb_path, rl={"medium": 4})
    prompts = _prompts(cfg)
    start = _save_tiny(tmp_path / "start", [m["content"] for p in prompts for m in p])
    arms = BanditReward("abcdefghijklm")
    before = _rewarded_mass(start, prompts, arms)
    moved = {}
    for name, reward in (("same", arms), ("complement", BanditReward("nopqrstuvwxyz"))):
        summary = run_grpo(
            cfg,
            GrpoOptions(
                model=str(start),
                max_steps=1,
                max_completion_tokens=1,
                num_generations=8,
                learning_rate=0.05,
                emit_events=False,
            ),
            reward=reward,
        )
        assert summary["steps"] == 1 and 0.0 < summary["reward_means"][0] < 1.0
        moved[name] = _rewarded_mass(Path(summary["final"]), prompts, arms)
    assert moved["same"] > before > moved["complement"], (before, moved)


class _HalfConstant:
    """Task ``medium0000`` always gets 1.0 (a zero-variance group); the others alternate 0/1."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, completion: str, row: dict) -> float:
        if row["task_id"] == "medium0000":
            return 1.0
        self.calls += 1
        return float(self.calls % 2)


def test_zero_variance_groups_are_masked_out_of_the_loss(cfg, tmp_path: Path) -> None:
    build_warehouse(cfg.duckdb_path, rl={"medium": 1})
    con = duckdb.connect(str(cfg.duckdb_path))
    con.execute(
        "INSERT INTO rl_prompts SELECT 'medium0001', prompt, prompt_text || ' again', repo, base_commit, "
        "fail_to_pass, pass_to_pass, localized_files, baseline_success_rate, difficulty_bucket, split "
        "FROM rl_prompts"
    )
    con.close()
    summary = run_grpo(cfg, GrpoOptions(max_steps=3, reward="bandit"), reward=_HalfConstant())
    stats = summary["filtering"]
    assert stats["groups"] == 6
    n = cfg.forge.train.num_generations
    constant_groups = sum(1 for s in _samples(summary) if s["task_id"] == "medium0000") // n
    assert stats["zero_variance_groups"] == constant_groups > 0
    assert stats["masked_samples"] == constant_groups * n


def test_zero_variance_rows_marks_whole_groups() -> None:
    adv = torch.tensor([0.0, 0.0, 0.0, 0.7, -0.7, 0.0, 0.0, 0.0, 0.0])
    assert zero_variance_rows(adv, 3).tolist() == [True] * 3 + [False] * 3 + [True] * 3


def _samples(summary: dict) -> list[dict]:
    path = Path(summary["final"]).parent / "samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replayed_successes_join_their_groups_with_the_buffer_reward(train_ws: Path) -> None:
    from vtforge.config import load_config

    write_levers(train_ws, "")
    text = (
        (train_ws / "vtcode.toml")
        .read_text()
        .replace("replay_mix_fraction = 0.0", "replay_mix_fraction = 0.5")
    )
    (train_ws / "vtcode.toml").write_text(text)
    cfg = load_config(cwd=train_ws)
    build_warehouse(cfg.duckdb_path, rl={"medium": 2})
    con = duckdb.connect(str(cfg.duckdb_path))
    con.execute(
        "INSERT INTO replay_buffer SELECT task_id, 'r-' || task_id, 'old', prompt_text, 'zap', 1.0, 1, 0, "
        "now()::TIMESTAMP FROM rl_prompts"
    )
    con.close()
    summary = run_grpo(cfg, GrpoOptions(max_steps=2, reward="bandit"), reward=BanditReward(arms="q"))
    assert summary["replay_rows"] == 2
    assert summary["filtering"]["replayed_samples"] == 2  # half of the 4 slots
    samples = _samples(summary)
    replayed = [s for s in samples if s["replayed"]]
    assert len(replayed) == 2 and all(s["reward"] == 1.0 for s in replayed)
    assert all(s["policy_version"] == summary["policy_version"] for s in samples)


def test_grpo_steps_and_samples_are_events(cfg) -> None:
    build_warehouse(cfg.duckdb_path, rl={"medium": 3, "hard": 2})
    summary = run_grpo(cfg, GrpoOptions(max_steps=2, reward="bandit", emit_samples=True))
    landing = cfg.landing_dir
    rows = duckdb.sql(
        f"SELECT trainer, step, reward_mean, reward_std, policy_version, samples, metrics['forge/groups'], "
        f"envelope.stage FROM '{landing}/training_step/*/*.parquet' ORDER BY step"
    ).fetchall()
    assert [r[1] for r in rows] == [1, 2]
    assert all(r[0] == "grpo" and r[2] is not None and r[3] is not None and r[7] == "rl" for r in rows)
    assert all(r[4] == summary["policy_version"] and r[5] == 8 and r[6] == 2.0 for r in rows)
    # every generated sample is a bugfixer rollout tagged with the policy version; without a
    # sandbox judgement (a custom reward) the rollout carries the outcome, and no patch or reward
    rollouts = duckdb.sql(
        f"SELECT rollout_id, role, policy_version, envelope.stage, outcome, messages[-1].role "
        f"FROM '{landing}/rollout/*/*.parquet'"
    ).fetchall()
    assert len(rollouts) == 16 and len({r[0] for r in rollouts}) == 16
    assert {(r[1], r[2], r[3], r[5]) for r in rollouts} == {
        ("bugfixer", summary["policy_version"], "rl", "assistant")
    }
    resolved = sum(r[4] == "resolved" for r in rollouts)
    assert resolved / 16 == sum(summary["reward_means"]) / 2
    assert not (landing / "reward_assigned").exists() and not (landing / "patch_proposed").exists()


def test_extract_patch_ignores_reasoning_and_prose() -> None:
    diff = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
    assert (
        extract_patch(f"<think>--- a/wrong.py\n+++ b/wrong.py\n@@</think>Here:\n```diff\n{diff}```") == diff
    )
    assert extract_patch(f"Sure.\n{diff}") == diff
    assert extract_patch("<think>hmm</think>I cannot fix this.") is None


def test_trl_adapter_passes_columns_and_uses_the_replay_reward() -> None:
    seen: list[tuple] = []

    def reward(completion: str, row: dict) -> float:
        seen.append((completion, row["task_id"]))
        return 0.0

    fn = as_trl_reward(
        reward, observe=lambda v, r, replayed, texts: seen.append(("observed", replayed, texts))
    )
    out = fn(
        prompts=["p", "p"],
        completions=[[{"role": "assistant", "content": "old win"}], "new try"],
        task_id=["t1", "t1"],
        replay_completion=["old win", "old win"],
        replay_reward=[1.0, 1.0],
        completion_ids=[[1], [2]],
    )
    assert out == [1.0, 0.0]
    assert seen == [("new try", "t1"), ("observed", [True, False], ["old win", "new try"])]


@pytest.mark.parametrize(
    "arms,completion,expected", [("ab", "<think>x</think> apple", 1.0), ("ab", "zebra", 0.0)]
)
def test_bandit_reward_is_deterministic(arms: str, completion: str, expected: float) -> None:
    assert BanditReward(arms)(completion, {}) == expected


def test_a_judged_sample_is_a_rollout_a_patch_and_a_reward() -> None:
    from vtforge.schemas import Codec
    from vtforge.trainers.events import sample_events
    from vtforge.trainers.rewards import Judgement

    patch = "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-a - b\n+a + b\n"
    row = {"task_id": "calc-1", "slot": 3, "prompt": [{"role": "user", "content": "fix it"}]}
    events = sample_events(
        row=row, completion="<think>x</think>" + patch, reward=1.0, policy_version="grpo-v", sample_index=2,
        model="tiny", engine="transformers", temperature=1.0, prompt_tokens=5, completion_tokens=9,
        truncated=False, judgement=Judgement(1.0, patch, "resolved", apply_status="applied"),
    )  # fmt: skip
    rollout, proposed, rewarded = events
    codec = Codec()
    for event in events:
        assert codec.decode(codec.encode(event))["envelope"]["stage"] == "rl"  # valid against its schema
    assert proposed["rollout_id"] == rewarded["rollout_id"] == rollout["rollout_id"]
    assert rewarded["subject_id"] == proposed["patch_id"] and rewarded["outcome"] == "resolved"
    assert proposed["files"] == ["calc.py"] and (proposed["lines_added"], proposed["lines_removed"]) == (1, 1)
    no_edit = sample_events(
        row=row, completion="no idea", reward=0.0, policy_version="grpo-v", sample_index=0, model="tiny",
        engine="transformers", temperature=1.0, prompt_tokens=5, completion_tokens=2, truncated=False,
        judgement=Judgement(0.0, None, "no_edit"),
    )  # fmt: skip
    assert [e["envelope"]["event_type"] for e in no_edit] == ["rollout"]
    assert no_edit[0]["parse_status"] == "no_edit"
    typed = sample_events(
        row=row, completion="<<<<<<< SEARCH", reward=0.0, policy_version="grpo-v", sample_index=1,
        model="tiny", engine="transformers", temperature=1.0, prompt_tokens=5, completion_tokens=2,
        truncated=False, judgement=Judgement(0.0, None, "no_edit", parse_status="unterminated_block"),
    )  # fmt: skip
    assert typed[0]["parse_status"] == "unterminated_block"  # the acceptance metric's reasons
