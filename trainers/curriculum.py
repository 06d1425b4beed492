"""The GRPO curriculum: which prompt each batch slot gets, and when hard tasks come back.

- Training starts on ``start_bucket`` (medium: > 10% baseline success). When that bucket is empty
  it starts on the nearest non-empty one and says so in ``history``.
- Each optimiser step's success rate is the mean reward of the samples generated in that step
  (replayed samples excluded; steps without a scored sample do not count). The rolling rate is
  the mean over the last ``hard_return_stable_steps`` steps, defined once that window is full.
  Hard tasks join the active set once the rolling rate has stayed within ``stability_tolerance``
  (max - min) for ``hard_return_stable_steps`` consecutive steps while at or above
  ``hard_return_min_success`` (so at the earliest after 2N-1 steps). They are never removed.
- ``easy_keep_fraction`` of the slots draw from the easier buckets that are not active, so
  nothing already learnt is forgotten.
- ``replay_mix_fraction`` of the slots are replay slots: a successful sample from
  ``replay_buffer`` is put into that prompt's group (positive-example reinforcement).

Every slot is drawn once, remembered by its number, and tagged with the run's policy version.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

BUCKETS = ("easy", "medium", "hard")


def bucket_of(row: Mapping[str, Any], easy_min: float, medium_min: float) -> str:
    """``difficulty_bucket`` when set, else by baseline success (>= easy_min easy, > medium_min medium)."""
    bucket = row.get("difficulty_bucket")
    if bucket in BUCKETS:
        return str(bucket)
    rate = row.get("baseline_success_rate")
    if rate is None:
        return "medium"
    if rate >= easy_min:
        return "easy"
    return "medium" if rate > medium_min else "hard"


@dataclass
class Curriculum:
    """State of the curriculum over one run; ``cfg`` is ``forge.curriculum``."""

    cfg: Any
    prompts: Sequence[Mapping[str, Any]]
    replay: Sequence[Mapping[str, Any]] = ()
    policy_version: str = ""
    seed: int = 0
    pools: dict[str, list[Mapping[str, Any]]] = field(init=False)
    active: list[str] = field(init=False)
    step_success: deque = field(init=False)
    rolling: deque = field(init=False)
    history: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[int, dict[str, Any]] = field(default_factory=dict)
    _pending: list[float] = field(default_factory=list)
    _steps: int = 0

    def __post_init__(self) -> None:
        c = self.cfg
        self.pools = {b: [] for b in BUCKETS}
        for row in self.prompts:
            self.pools[bucket_of(row, c.easy_min_success, c.medium_min_success)].append(row)
        start = c.start_bucket
        if not self.pools[start]:
            order = {"easy": ("medium", "hard"), "medium": ("easy", "hard"), "hard": ("medium", "easy")}[
                start
            ]
            fallback = next((b for b in order if self.pools[b]), None)
            if fallback is None:
                raise ValueError("no RL prompts to train on")
            self.history.append(
                {"step": 0, "event": "start_bucket_empty", "wanted": start, "using": fallback}
            )
            start = fallback
        self.active = [start]
        self.history.append({"step": 0, "event": "start", "active": list(self.active)})
        window = c.hard_return_stable_steps
        self.step_success = deque(maxlen=window)
        self.rolling = deque(maxlen=window)

    # --- observing rewards -------------------------------------------------------------------

    def observe(self, rewards: Sequence[float | None]) -> None:
        """Rewards of freshly generated samples (not replayed ones) in the current step."""
        self._pending.extend(float(r) for r in rewards if r is not None)

    def end_step(self) -> None:
        """Close a step: update the rolling success rate and bring hard tasks back when it is stable."""
        self._steps += 1
        if self._pending:
            self.step_success.append(sum(self._pending) / len(self._pending))
            self._pending = []
        if len(self.step_success) < self.cfg.hard_return_stable_steps:
            return  # the rolling rate exists once its window is full
        self.rolling.append(sum(self.step_success) / len(self.step_success))
        if "hard" not in self.active and self.pools["hard"] and self.hard_ready():
            self.active.append("hard")
            self.history.append(
                {
                    "step": self._steps,
                    "event": "hard_added",
                    "rolling_success": self.rolling[-1],
                    "active": list(self.active),
                }
            )

    def hard_ready(self) -> bool:
        c = self.cfg
        if len(self.rolling) < c.hard_return_stable_steps:
            return False
        spread = max(self.rolling) - min(self.rolling)
        return spread <= c.stability_tolerance and self.rolling[-1] >= c.hard_return_min_success

    @property
    def rolling_success(self) -> float | None:
        return self.rolling[-1] if self.rolling else None

    # --- drawing prompts ---------------------------------------------------------------------

    def _is_replay_slot(self, slot: int) -> bool:
        f = self.cfg.replay_mix_fraction
        return bool(self.replay) and int((slot + 1) * f) > int(slot * f)

    def draw(self, slot: int) -> dict[str, Any]:
        """The row for ``slot`` (drawn once, then remembered)."""
        if slot in self.slots:
            return self.slots[slot]
        rng = random.Random(f"{self.seed}/{slot}")
        if self._is_replay_slot(slot):
            row = dict(rng.choice(self.replay))
            kind = "replay"
        else:
            easier = [
                b for b in BUCKETS[: BUCKETS.index(min(self.active, key=BUCKETS.index))] if self.pools[b]
            ]
            if easier and rng.random() < self.cfg.easy_keep_fraction:
                bucket = rng.choice(easier)
                kind = "keep_easier"
            else:
                bucket = rng.choice([b for b in self.active if self.pools[b]])
                kind = "active"
            row = dict(rng.choice(self.pools[bucket]))
        row.update(slot=slot, draw=kind, policy_version=self.policy_version)
        row.setdefault("replay_completion", None)
        row.setdefault("replay_reward", None)
        self.slots[slot] = row
        return row

    def stream(self) -> Iterator[dict[str, Any]]:
        """What the trainer's dataset yields: the prompt and the slot number (the rest is looked up)."""
        slot = 0
        while True:
            row = self.draw(slot)
            yield {"prompt": row["prompt"], "slot": slot}
            slot += 1

    def state(self) -> dict[str, Any]:
        drawn: dict[str, int] = {}
        for row in self.slots.values():
            key = row["draw"] if row["draw"] == "replay" else str(row.get("difficulty_bucket") or row["draw"])
            drawn[key] = drawn.get(key, 0) + 1
        return {
            "active": list(self.active),
            "rolling_success": self.rolling_success,
            "history": self.history,
            "drawn": drawn,
            "steps": self._steps,
        }


def replay_rows(
    replay: Sequence[Mapping[str, Any]],
    prompts: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    max_completion_tokens: int,
) -> tuple[list[dict[str, Any]], int]:
    """Replay samples as curriculum rows; the prompt row of the same task supplies the columns.

    A replayed completion longer than the completion budget is left out (never cut): returns the
    rows and how many were left out.
    """
    by_task = {str(p["task_id"]): p for p in prompts}
    rows, skipped = [], 0
    for sample in replay:
        completion = sample["completion"]
        if len(tokenizer(completion, add_special_tokens=False)["input_ids"]) + 1 > max_completion_tokens:
            skipped += 1
            continue
        base = by_task.get(str(sample["task_id"]))
        if base is not None and (base.get("prompt_text") or "") == (sample.get("prompt") or ""):
            row = dict(base)
        else:
            row = {
                "task_id": sample["task_id"],
                "prompt": [{"role": "user", "content": sample.get("prompt") or ""}],
            }
        row.update(
            replay_completion=completion,
            replay_reward=float(sample["reward"]),
            replay_rollout_id=sample.get("rollout_id"),
            replay_policy_version=sample.get("policy_version"),
        )
        rows.append(row)
    return rows, skipped
