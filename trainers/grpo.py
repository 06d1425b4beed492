"""Stage 2 RL: GRPO with the execution-outcome reward, on TRL's ``GRPOTrainer``.

TRL does the generation (transformers on a CPU, vLLM on a GPU), the group-normalised advantages,
the clipped policy loss, checkpoints and logging. ``ForgeGRPOTrainer`` adds the three things TRL
has no option for, each as a small override:

- **zero-variance groups are filtered**: a group whose samples all got the same reward has zero
  advantage; its completion tokens are masked out of the loss and of the token count it is
  normalised by, so it neither dilutes the update nor (with ``kl_beta > 0``) pulls towards the
  reference for nothing;
- **positive-example replay**: in a replay slot, the first sample of the group is replaced by a
  recent successful completion from ``replay_buffer`` (tokenised as the model would emit it);
  its reward is the buffer's, so the sandbox is not run again;
- **the curriculum** (``vtforge.trainers.curriculum``) feeds prompts through a lazily drawn stream, so
  what a step trains on depends on the success rate so far.

The prompts come from ``rl_prompts``, whose localization is fixed upstream: GRPO never generates or
trains a localization, only the code edit. ``frozen_localization = P`` first emits policy P's
localization of every RL task as ``method = 'frozen'`` (``vtforge.trainers.frozen_localization``), refreshes
the warehouse and trains only on the rows built on P's files (``localization_policy = P``).
Only tasks in a measured difficulty bucket are drawn unless ``include_unmeasured``.

GRPO starts only from a promoted policy (``vtforge.trainers.promotion``): a policy written by our trainers
needs a current ``promoted`` decision in ``policy_promotions`` (``vtforge gates --promote``); a base
model needs none. ``force`` starts anyway and emits a ``forced`` decision naming this run.

The completion budget is reserved from the context budget (``min(forge.context.train_tokens, the
model's window)``). On a tiny model (or one trained from it: its config says ``vtforge_tiny``) the
default ``forge.train.max_completion_tokens`` is clamped to ``1/TINY_COMPLETION_SHARE`` of that
budget, so the default levers leave room for a prompt (``forge.train.max_completion_tokens`` is
sized for real models); a value given with ``--max-completion-tokens`` is used as it is. A real model
keeps the lever as it is: ``smollm2-135m`` (8,192 positions) gets a budget of min(65,536, 8,192) =
8,192 with 1,024 reserved for the completion. When no prompt fits, the error names the lever and the
value that would fit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import PrinterCallback, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from vtforge.trainers import runs
from vtforge.trainers.common import Policy, common_args, event_sink, starting_policy
from vtforge.trainers.curriculum import Curriculum, replay_rows
from vtforge.trainers.events import TrainingStepEvents, sample_events
from vtforge.trainers.frozen_localization import FrozenLocalizationError, freeze_localization
from vtforge.trainers.promotion import NotPromoted, promotion_event, require_promotion
from vtforge.trainers.readers import (
    ReadFilter,
    TruncationLog,
    WarehouseReader,
    connect,
    iter_replay,
    iter_rl_prompts,
    prompt_messages,
)
from vtforge.trainers.rewards import BanditReward, OutcomeReward, SandboxReward, as_trl_reward
from vtforge.trainers.sft import TrainingDataError
from vtforge.trainers.skill_eval import skill_eval_callbacks
from vtforge.trainers.tiny import TINY_MARKER

if TYPE_CHECKING:
    from vtforge.config import Config

TRAINER = "grpo"
TINY_COMPLETION_SHARE = 8  # the tiny model reserves at most 1/8 of its window for the completion


def zero_variance_rows(advantages: torch.Tensor, group_size: int) -> torch.Tensor:
    """Boolean per sample: its group's advantages are all zero (every sample got the same reward)."""
    groups = advantages.view(-1, group_size)
    return (groups == 0).all(dim=1).repeat_interleave(group_size)


class ForgeGRPOTrainer(GRPOTrainer):
    """GRPOTrainer plus zero-variance filtering and replay of successful samples (see module doc)."""

    def __init__(self, *args: Any, curriculum: Curriculum | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.curriculum = curriculum
        self.forge_stats = {
            "groups": 0,
            "zero_variance_groups": 0,
            "masked_samples": 0,
            "replayed_samples": 0,
        }
        self._step_stats = dict(self.forge_stats)
        self._forge_inputs: list[dict[str, Any]] = []

    def _slot_row(self, example: dict[str, Any]) -> dict[str, Any] | None:
        if self.curriculum is None or "slot" not in example:
            return None
        return self.curriculum.slots.get(int(example["slot"]))

    def _generate_and_score_completions(self, inputs):
        # Give the reward function every column of the drawn row (the stream only carries the slot).
        for example in inputs:
            row = self._slot_row(example)
            if row is not None:
                for key, value in row.items():
                    example.setdefault(key, value)
        self._forge_inputs = inputs
        out = super()._generate_and_score_completions(inputs)
        masked = zero_variance_rows(out["advantages"], self.num_generations).to(out["completion_mask"].device)
        if masked.any():
            out["completion_mask"] = out["completion_mask"] * (~masked).unsqueeze(1).to(
                out["completion_mask"].dtype
            )
        loss_mask = (
            out["completion_mask"] if "tool_mask" not in out else out["completion_mask"] * out["tool_mask"]
        )
        out["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        groups = masked.numel() // self.num_generations
        zero = int(masked.sum().item()) // self.num_generations
        for stats in (self.forge_stats, self._step_stats):
            stats["groups"] += groups
            stats["zero_variance_groups"] += zero
            stats["masked_samples"] += int(masked.sum().item())
        return out

    def _generate(self, prompts: list):
        result = list(super()._generate(prompts))
        _prompt_ids, completion_ids, _tool_mask, completions, logprobs = result[:5]
        n = self.num_generations
        eos = self._tokenizer.eos_token_id
        for start in range(0, len(prompts), n):
            example = self._forge_inputs[start] if start < len(self._forge_inputs) else {}
            text = example.get("replay_completion")
            if not text:
                continue
            ids = self._tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
            completion_ids[start] = ids
            if completions and isinstance(completions[start], list):
                completions[start] = [{"role": "assistant", "content": text}]
            else:
                completions[start] = text
            if logprobs is not None:
                logprobs[start] = [float("nan")] * len(ids)
            self.forge_stats["replayed_samples"] += 1
            self._step_stats["replayed_samples"] += 1
        return tuple(result)

    def take_step_stats(self) -> dict[str, float]:
        stats = {f"forge/{k}": float(v) for k, v in self._step_stats.items()}
        if self.curriculum is not None:
            stats["curriculum/active_buckets"] = float(len(self.curriculum.active))
            if self.curriculum.rolling_success is not None:
                stats["curriculum/rolling_success"] = float(self.curriculum.rolling_success)
        self._step_stats = dict.fromkeys(self._step_stats, 0)
        return stats


@dataclass
class GrpoOptions:
    model: str | None = None  # registry name or local folder; None = the latest SFT policy, else tiny
    max_steps: int = 10
    split: str | None = "train"
    slice: dict[str, Any] = field(default_factory=dict)
    reward: str = "sandbox"  # sandbox | bandit
    learning_rate: float | None = None
    max_completion_tokens: int | None = None  # default forge.train.max_completion_tokens
    num_generations: int | None = None
    save_steps: int | None = None
    emit_events: bool = True
    emit_samples: bool | None = None  # rollout + reward events per sample; None: only with the sandbox reward
    on_step: Callable[[dict[str, Any]], None] | None = None  # each training_step event (progress output)
    eval_suite: str | None = None  # a forge.eval.suites name: skill evaluation after epochs (skill_eval)
    arm: str | None = None  # the recipe arm this run belongs to (agentless | agentic | staged)
    include_unmeasured: bool = False  # also draw tasks with no measured baseline (bucket 'unmeasured')
    frozen_localization: str | None = None  # train on this policy's localization (see module doc)
    force: bool = False  # start from a policy that is not promoted; recorded as a `forced` decision


def _make_reward(cfg: Config, kind: str) -> OutcomeReward:
    if kind == "sandbox":
        return SandboxReward(cfg)
    if kind == "bandit":
        return BanditReward()
    raise ValueError(f"unknown reward {kind!r}: sandbox | bandit")


class _CurriculumSteps(TrainerCallback):
    """Closes a curriculum step after every optimiser step."""

    def __init__(self, curriculum: Curriculum) -> None:
        self.curriculum = curriculum

    def on_step_end(self, args, state, control, **kwargs):
        self.curriculum.end_step()


def completion_budget(requested: int, budget: int, *, explicit: bool, tiny: bool) -> int:
    """The completion budget: ``requested``, except that a tiny model on the default lever keeps at
    most ``budget // TINY_COMPLETION_SHARE`` (``explicit``: the value was chosen, so it is kept)."""
    if tiny and not explicit:
        return max(1, min(requested, budget // TINY_COMPLETION_SHARE))
    return requested


def no_room_message(
    *,
    lever: str,
    completion: int,
    budget: int,
    window: int | None,
    train_tokens: int,
    shortest: int | None,
    lever_value: int | None = None,
) -> str:
    """Which lever leaves the prompts no room, by how much, and what would fit (``lever_value``: the
    lever's own value when the budget used was clamped from it)."""
    limited_by = (
        f"the model's {window}-position window"
        if window and window <= train_tokens
        else f"forge.context.train_tokens={train_tokens}"
    )
    room = max(budget - completion, 0)
    value = (
        f"{lever_value} (clamped to {completion} for a tiny model)"
        if lever_value is not None and lever_value != completion
        else str(completion)
    )
    text = f"{lever}={value} leaves {room} of {budget} positions ({limited_by}) for prompts"
    if shortest is None:
        return text
    fixes = []
    if budget - shortest >= 1:
        fixes.append(f"lower it to ≤ {budget - shortest}")
    if window and window <= train_tokens:
        fixes.append(f"use a model with ≥ {shortest + completion} positions")
    else:
        fixes.append(f"raise forge.context.train_tokens to ≥ {shortest + completion}")
    return f"{text}; the shortest prompt needs {shortest}: {' or '.join(fixes)}"


def _start_promotion(con: Any, start_version: str | None, *, force: bool) -> dict[str, Any]:
    """GRPO's start must be promoted (``vtforge.trainers.promotion``): a base model needs nothing; a policy
    of ours needs a ``promoted`` decision unless ``force``, which is then recorded."""
    if start_version is None:
        return {"policy_version": None, "decision": "base", "reason": "a base model has no gates"}
    try:
        found = require_promotion(con, start_version)
    except NotPromoted as exc:
        if not force:
            raise
        return {"policy_version": start_version, "decision": "forced", "reason": str(exc)}
    return {"policy_version": start_version, "decision": found.decision, "reason": found.reason}


def _forced_event(cfg: Config, start_version: str, reason: str, run_version: str) -> dict[str, Any]:
    """The override, as a ``forced`` decision naming the GRPO run, with the gate values of now."""
    from vtforge.trainers.gates import GateDataError, GateReport, evaluate_gates

    con = connect(cfg.duckdb_path)
    try:
        report = evaluate_gates(con, cfg.forge.curriculum.gates, start_version)
    except GateDataError:
        report = GateReport(start_version)
    finally:
        con.close()
    return promotion_event(
        report, decision="forced", reason=f"--force: {reason}", forced_by=run_version, run_id=run_version
    )


@dataclass
class _Prepared:
    """The starting policy and the prompts that fit its window (with what was cut and why)."""

    policy: Policy
    promotion: dict[str, Any]
    budget: int  # positions per sequence: min(forge.context.train_tokens, the model's window)
    window: int | None
    max_completion: int
    requested_completion: int
    prompts: list[dict[str, Any]]
    replay_source: list[dict[str, Any]]
    log: TruncationLog


def _prepare(cfg: Config, options: GrpoOptions, filt: ReadFilter) -> _Prepared:
    """Load the starting policy (promoted, or forced), then read the RL prompts and the replay
    buffer, each prompt truncated to leave room for the completion."""
    train_cfg, context = cfg.forge.train, cfg.forge.context
    requested = options.max_completion_tokens or train_cfg.max_completion_tokens
    con = connect(cfg.duckdb_path)
    try:
        reader = WarehouseReader(con)
        latest_sft = runs.read_latest(cfg.data_dir).get("sft", {}).get("final")

        def corpus():
            for row in reader.rows("rl_prompts", filt):
                for message in prompt_messages(row):
                    yield message["content"]

        policy = starting_policy(
            options.model,
            corpus=corpus,
            seed=train_cfg.seed,
            fallback=Path(latest_sft) if latest_sft else None,
            cfg=cfg,
        )
        promotion = _start_promotion(con, policy.parent_version, force=options.force)
        budget = context.train_tokens
        window = getattr(policy.model.config, "max_position_embeddings", None)
        if window:
            budget = min(budget, int(window))
        tiny = policy.is_tiny or bool(getattr(policy.model.config, TINY_MARKER, False))
        explicit = options.max_completion_tokens is not None  # the lever is for real models
        max_completion = completion_budget(requested, budget, explicit=explicit, tiny=tiny)
        log = TruncationLog()
        prompts = list(
            iter_rl_prompts(
                reader,
                policy.tokenizer,
                budget=budget,
                policy=context.truncation,
                reserve=max_completion,
                filt=filt,
                log=log,
            )
        )
        replay_source = list(iter_replay(reader)) if cfg.forge.curriculum.replay_mix_fraction > 0 else []
    finally:
        con.close()
    return _Prepared(
        policy,
        promotion,
        budget,
        int(window) if window else None,
        max_completion,
        requested,
        prompts,
        replay_source,
        log,
    )


def _no_prompts(cfg: Config, options: GrpoOptions, prep: _Prepared, filt: ReadFilter, frozen: Any) -> str:
    """Why no prompt is usable: a lever that leaves no room (and what would fit), or a frozen
    localization with no rows yet."""
    room = ""
    if prep.log.counts["skipped"]:
        lever = (
            "--max-completion-tokens"
            if options.max_completion_tokens is not None
            else "forge.train.max_completion_tokens"
        )
        room = ": " + no_room_message(
            lever=lever,
            completion=prep.max_completion,
            budget=prep.budget,
            window=prep.window,
            train_tokens=cfg.forge.context.train_tokens,
            shortest=prep.log.shortest_skipped,
            lever_value=prep.requested_completion,
        )
    if frozen is not None and not prep.log.counts["skipped"]:
        policy = options.frozen_localization or cfg.forge.train.frozen_localization_policy
        room = (
            f": no row carries {policy}'s frozen localization yet (with forge.events.sink = "
            "kafka, ingest the events and materialise, then run again)"
        )
    return (
        f"no usable rl_prompts rows in {cfg.duckdb_path}{room} "
        f"(filter {filt}; truncation {prep.log.summary()})"
    )


def _grpo_args(
    cfg: Config,
    options: GrpoOptions,
    run: runs.RunDir,
    *,
    learning_rate: float,
    num_generations: int,
    max_completion: int,
) -> GRPOConfig:
    """TRL's ``GRPOConfig`` from ``forge.train`` and this run's options."""
    train_cfg = cfg.forge.train
    extra: dict[str, Any] = {}
    if train_cfg.use_vllm:
        extra.update(use_vllm=True, vllm_mode="colocate")
    return GRPOConfig(
        **common_args(
            train_cfg,
            output_dir=run.checkpoints,
            max_steps=options.max_steps,
            learning_rate=learning_rate,
            save_steps=options.save_steps,
        ),
        per_device_train_batch_size=train_cfg.grpo_prompts_per_step * num_generations,
        num_generations=num_generations,
        max_completion_length=max_completion,
        temperature=train_cfg.grpo_temperature,
        beta=train_cfg.kl_beta,
        shuffle_dataset=False,  # the curriculum decides the order; a shuffle buffer would draw ahead
        **extra,
    )


@dataclass
class _SampleLog:
    """What each rewarded sample leaves behind: a line in ``samples.jsonl``, the curriculum's
    success count, and (with ``emit``) its rollout and reward events."""

    path: Path
    curriculum: Curriculum
    reward_fn: OutcomeReward
    policy: Policy
    policy_version: str
    num_generations: int
    max_completion: int
    temperature: float
    engine: str
    emit_samples: bool
    emit: Callable[[dict[str, Any]], None] | None = None  # set once the event sink is open

    def __post_init__(self) -> None:
        self.file = self.path.open("a", encoding="utf-8")

    def _tokens(self, text: str) -> int:
        return len(self.policy.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _emit_sample(
        self, emit: Callable[[dict[str, Any]], None], i: int, value: float | None, row: dict, text: str
    ) -> None:
        judgements = getattr(self.reward_fn, "judgements", None)
        judgement = judgements.get((str(row.get("task_id")), text)) if judgements is not None else None
        completion_tokens = self._tokens(text)
        prompt_text = self.policy.tokenizer.apply_chat_template(
            row["prompt"], tokenize=False, add_generation_prompt=True
        )
        for event in sample_events(
            row=row,
            completion=text,
            reward=value,
            policy_version=self.policy_version,
            sample_index=i % self.num_generations,
            model=self.policy.source,
            engine=self.engine,
            temperature=self.temperature,
            prompt_tokens=self._tokens(prompt_text),
            completion_tokens=completion_tokens,
            truncated=completion_tokens >= self.max_completion,
            judgement=judgement,
        ):
            emit(event)

    def observe(
        self, values: list[float | None], rows: list[dict], replayed: list[bool], texts: list[str]
    ) -> None:
        self.curriculum.observe([v for v, r in zip(values, replayed, strict=True) if not r])
        for i, (value, row, was_replayed) in enumerate(zip(values, rows, replayed, strict=True)):
            if self.emit_samples and self.emit is not None and not was_replayed:
                self._emit_sample(self.emit, i, value, row, texts[i])
            record = {
                "task_id": row.get("task_id"),
                "slot": row.get("slot"),
                "policy_version": self.policy_version,
                "reward": value,
                "replayed": was_replayed,
                "bucket": row.get("difficulty_bucket"),
                "draw": row.get("draw"),
            }
            self.file.write(json.dumps(record) + "\n")
        judgements = getattr(self.reward_fn, "judgements", None)
        if judgements is not None:
            judgements.clear()  # one batch at a time

    def close(self) -> None:
        self.file.close()


def run_grpo(cfg: Config, options: GrpoOptions, *, reward: OutcomeReward | None = None) -> dict[str, Any]:
    """Train with GRPO, save ``final/``, write ``run.json`` and return the summary."""
    from datasets import Features, IterableDataset, List, Value

    train_cfg = cfg.forge.train
    frozen_policy = options.frozen_localization or train_cfg.frozen_localization_policy
    run = None
    frozen = None
    slice_ = dict(options.slice)
    if frozen_policy:
        run = runs.new_run(cfg.data_dir, TRAINER)
        try:
            frozen = freeze_localization(cfg, frozen_policy, request=run.policy_version)
        except FrozenLocalizationError as exc:
            raise TrainingDataError(str(exc)) from None
        slice_.update(localized_from="frozen", localization_policy=frozen_policy)
    filt = ReadFilter(split=options.split, slice=slice_)
    prep = _prepare(cfg, options, filt)
    policy, prompts = prep.policy, prep.prompts
    if not prompts:
        raise TrainingDataError(_no_prompts(cfg, options, prep, filt, frozen))
    replay, replay_too_long, replay_unmatched = replay_rows(
        prep.replay_source, prompts, policy.tokenizer, prep.max_completion
    )
    try:
        curriculum = Curriculum(
            cfg.forge.curriculum,
            prompts,
            replay,
            seed=train_cfg.seed,
            include_unmeasured=options.include_unmeasured,
        )
    except ValueError as exc:
        raise TrainingDataError(f"{exc} (rl_prompts in {cfg.duckdb_path}, filter {filt})") from None
    if run is None:
        run = runs.new_run(cfg.data_dir, TRAINER)
    curriculum.policy_version = run.policy_version
    prep.log.write_jsonl(run.truncation_log)

    features = Features(
        {"prompt": List({"role": Value("string"), "content": Value("string")}), "slot": Value("int64")}
    )
    dataset = IterableDataset.from_generator(curriculum.stream, features=features)
    lr = options.learning_rate or (
        train_cfg.tiny_learning_rate if policy.is_tiny else train_cfg.grpo_learning_rate
    )
    num_generations = options.num_generations or train_cfg.num_generations
    args = _grpo_args(
        cfg,
        options,
        run,
        learning_rate=lr,
        num_generations=num_generations,
        max_completion=prep.max_completion,
    )
    reward_fn = reward or _make_reward(cfg, options.reward)
    emit_samples = options.emit_events and (
        options.emit_samples if options.emit_samples is not None else isinstance(reward_fn, SandboxReward)
    )
    samples = _SampleLog(
        path=run.root / "samples.jsonl",
        curriculum=curriculum,
        reward_fn=reward_fn,
        policy=policy,
        policy_version=run.policy_version,
        num_generations=num_generations,
        max_completion=prep.max_completion,
        temperature=train_cfg.grpo_temperature,
        engine="vllm" if train_cfg.use_vllm else "transformers",
        emit_samples=emit_samples,
    )
    summary: dict[str, Any] = {
        "trainer": TRAINER,
        "policy_version": run.policy_version,
        "parent": policy.parent_version,
        "started_from": policy.source,
        "arm": options.arm,
        "options": asdict(options),
        "prompts": len(prompts),
        "replay_rows": len(replay),
        "replay_too_long": replay_too_long,
        "replay_unmatched": replay_unmatched,  # no training prompt of that task with that prompt text
        "budget_tokens": prep.budget,
        "max_completion_tokens": prep.max_completion,
        "truncation": prep.log.summary(),
        "frozen_localization": frozen.summary() if frozen is not None else None,
        "include_unmeasured": options.include_unmeasured,
        "learning_rate": lr,
        "reward": type(reward_fn).__name__,
        "sample_events": emit_samples,
        "promotion": prep.promotion,
    }
    runs.write_summary(run, summary)
    started = time.perf_counter()
    try:
        with event_sink(cfg, options.emit_events) as emit:
            samples.emit = emit
            if prep.promotion["decision"] == "forced":
                emit(_forced_event(cfg, policy.parent_version, prep.promotion["reason"], run.policy_version))
            trainer_box: list[ForgeGRPOTrainer] = []
            events = TrainingStepEvents(
                emit,
                trainer=TRAINER,
                policy_version=run.policy_version,
                samples_per_step=args.per_device_train_batch_size * train_cfg.gradient_accumulation_steps,
                extra_metrics=lambda: trainer_box[0].take_step_stats(),
                on_event=options.on_step,
            )
            trainer = ForgeGRPOTrainer(
                model=policy.model,
                args=args,
                train_dataset=dataset,
                processing_class=policy.tokenizer,
                reward_funcs=[as_trl_reward(reward_fn, observe=samples.observe)],
                callbacks=[
                    _CurriculumSteps(curriculum),
                    events,
                    *skill_eval_callbacks(
                        cfg, options.eval_suite, run.policy_version, policy.tokenizer, emit, options.arm
                    ),
                ],
                curriculum=curriculum,
            )
            trainer.remove_callback(PrinterCallback)  # our events (and on_step) report each step
            trainer_box.append(trainer)
            result = trainer.train()
            trainer.save_model(str(run.final))
            policy.tokenizer.save_pretrained(str(run.final))
    finally:
        samples.close()
        close = getattr(reward_fn, "close", None)
        if close is not None:
            close()
    rewards = [e["reward_mean"] for e in events.emitted if e["reward_mean"] is not None]
    summary.update(
        steps=int(result.global_step),
        seconds=round(time.perf_counter() - started, 2),
        events=len(events.emitted),
        final=str(run.final),
        reward_means=rewards,
        filtering=dict(trainer.forge_stats),
        curriculum=curriculum.state(),
    )
    runs.write_summary(run, summary)
    runs.record_latest(cfg.data_dir, TRAINER, run, {"steps": summary["steps"]}, arm=options.arm)
    return summary
