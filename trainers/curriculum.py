"""The GRPO curriculum: which prompt each batch slot gets, and when hard tasks come back.

- Buckets come from the measured baseline success rate by one rule (``vtforge.tasks.model.bucket_of``,
  the same as the warehouse's). A task with no measured baseline is ``unmeasured``: it is left out
  (counted in ``history``) unless ``include_unmeasured``, which makes it drawable from the start,
  like an active bucket.
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
from typing import TYPE_CHECKING, Any

from vtforge.tasks.model import BUCKETS, UNMEASURED
from vtforge.tasks.model import bucket_of as rate_bucket

if TYPE_CHECKING:
    from vtforge.config import CurriculumConfig


def bucket_of(row: Mapping[str, Any], easy_min: float, medium_min: float) -> str:
    """The row's bucket: ``difficulty_bucket`` when it names one (the warehouse computed it with the
    same rule), else the rule applied to ``baseline_success_rate`` (``unmeasured`` when None)."""
    bucket = row.get("difficulty_bucket")
    if bucket in (*BUCKETS, UNMEASURED):
        return str(bucket)
    return rate_bucket(row.get("baseline_success_rate"), easy_min, medium_min)


@dataclass
class Curriculum:
    """State of the curriculum over one run; ``cfg`` is ``forge.curriculum``."""

    cfg: CurriculumConfig
    prompts: Sequence[Mapping[str, Any]]
    replay: Sequence[Mapping[str, Any]] = ()
    policy_version: str = ""
    seed: int = 0
    include_unmeasured: bool = False
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
        self.pools = {b: [] for b in (*BUCKETS, UNMEASURED)}
        for row in self.prompts:
            self.pools[bucket_of(row, c.easy_min_success, c.medium_min_success)].append(row)
        unmeasured = self.pools[UNMEASURED]
        if unmeasured and not self.include_unmeasured:
            left_out = {str(r.get("task_id")) for r in unmeasured}
            self.replay = [r for r in self.replay if str(r.get("task_id")) not in left_out]
            self.history.append({"step": 0, "event": "unmeasured_left_out", "tasks": len(unmeasured)})
        start = c.start_bucket
        if not self.pools[start]:
            order = {"easy": ("medium", "hard"), "medium": ("easy", "hard"), "hard": ("medium", "easy")}[
                start
            ]
            fallback = next((b for b in order if self.pools[b]), None)
            if fallback is None and not (self.include_unmeasured and unmeasured):
                hint = (
                    f"; {len(unmeasured)} unmeasured (no baseline): measure them with `vtforge tasks "
                    "baseline` or pass --include-unmeasured"
                    if unmeasured
                    else ""
                )
                raise ValueError(f"no RL prompts to train on in a measured bucket{hint}")
            self.history.append(
                {"step": 0, "event": "start_bucket_empty", "wanted": start, "using": fallback or UNMEASURED}
            )
            start = fallback
        self.active = [start] if start else []
        if self.include_unmeasured and unmeasured:
            self.active.append(UNMEASURED)
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
            measured = [b for b in self.active if b in BUCKETS]
            top = min(measured, key=BUCKETS.index) if measured else BUCKETS[0]
            easier = [b for b in BUCKETS[: BUCKETS.index(top)] if self.pools[b]]
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
) -> tuple[list[dict[str, Any]], int, int]:
    """Replay samples as curriculum rows; the prompt row of the same task supplies the columns.

    A sample is replayed only into the group of its own prompt: its task must be one of ``prompts``
    (so it fits the budget, is in a drawable bucket, carries the run's localization and every
    column the reward reads) and its prompt text must be that row's. A replayed completion longer
    than the completion budget is left out (never cut). Returns the rows, how many were too long and
    how many had no matching prompt row.
    """
    by_task = {str(p["task_id"]): p for p in prompts}
    rows, too_long, unmatched = [], 0, 0
    for sample in replay:
        completion = sample["completion"]
        if len(tokenizer(completion, add_special_tokens=False)["input_ids"]) + 1 > max_completion_tokens:
            too_long += 1
            continue
        base = by_task.get(str(sample["task_id"]))
        if base is None or (base.get("prompt_text") or "") != (sample.get("prompt") or ""):
            unmatched += 1
            continue
        row = dict(base)
        row.update(
            replay_completion=completion,
            replay_reward=float(sample["reward"]),
            replay_rollout_id=sample.get("rollout_id"),
            replay_policy_version=sample.get("policy_version"),
        )
        rows.append(row)
    return rows, too_long, unmatched
