"""Stage 1 cold-start SFT on reasoning trajectories, with TRL's ``SFTTrainer``.

We read and tokenize ``sft_examples`` ourselves (``vtforge.trainers.readers``) so the context budget and
the truncation policy are ours and recorded, and hand TRL a tokenized dataset with an
``assistant_masks`` column: TRL turns it into labels (loss on the answer only), packs sequences
(best-fit decreasing, padding-free), checkpoints and resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vtforge.trainers import runs
from vtforge.trainers.common import common_args, event_sink, starting_policy
from vtforge.trainers.events import TrainingStepEvents
from vtforge.trainers.readers import (
    ReadFilter,
    TruncationLog,
    WarehouseReader,
    connect,
    iter_sft_examples,
    row_messages,
)

if TYPE_CHECKING:
    from trl import SFTConfig

    from vtforge.config import Config

TRAINER = "sft"


class TrainingDataError(RuntimeError):
    """No usable rows for a run; the message says which table and filter."""


@dataclass
class SftOptions:
    model: str | None = None  # a registry name (forge.models) or a local folder; None: the tiny model
    max_steps: int = 20
    split: str | None = "train"
    slice: dict[str, Any] = field(default_factory=dict)  # e.g. {"role": ["bugfixer", "testwriter"]}
    source_version: str | None = None  # train only on rows of this policy_version
    resume: str | None = None  # policy version of an earlier run to continue
    learning_rate: float | None = None  # default: forge.train (tiny_learning_rate for the tiny model)
    save_steps: int | None = None
    emit_events: bool = True
    on_step: Callable[[dict[str, Any]], None] | None = None  # each training_step event (progress output)
    eval_suite: str | None = None  # a forge.eval.suites name: skill evaluation after epochs (skill_eval)
    arm: str | None = None  # the recipe arm this run belongs to (agentless | agentic | staged)


def _corpus(reader: WarehouseReader, filt: ReadFilter):
    def texts():
        for row in reader.rows("sft_examples", filt):
            for message in row_messages(row):
                yield message["content"]

    return texts


def _sft_args(
    cfg: Config, options: SftOptions, run: runs.RunDir, *, learning_rate: float, max_length: int
) -> SFTConfig:
    """TRL's ``SFTConfig`` from ``forge.train`` and this run's options."""
    from trl import SFTConfig

    train_cfg = cfg.forge.train
    return SFTConfig(
        **common_args(
            train_cfg,
            output_dir=run.checkpoints,
            max_steps=options.max_steps,
            learning_rate=learning_rate,
            save_steps=options.save_steps,
        ),
        per_device_train_batch_size=train_cfg.sft_batch_size,
        packing=train_cfg.packing,
        packing_strategy="bfd",
        max_length=max_length,
        include_num_input_tokens_seen="non_padding",
        dataset_num_proc=None,
    )


def run_sft(cfg: Config, options: SftOptions) -> dict[str, Any]:
    """Train, save ``final/``, write ``run.json`` and return the summary."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    from vtforge.trainers.skill_eval import skill_eval_callbacks

    train_cfg, context = cfg.forge.train, cfg.forge.context
    con = connect(cfg.duckdb_path)
    reader = WarehouseReader(con)
    filt = ReadFilter(split=options.split, policy_version=options.source_version, slice=options.slice)
    resume_from = None
    if options.resume:
        run = runs.existing_run(cfg.data_dir, options.resume)
        resume_from = get_last_checkpoint(str(run.root))
        if resume_from is None:
            raise TrainingDataError(f"run {options.resume} has no checkpoint to resume from ({run.root})")
        policy = starting_policy(resume_from, corpus=lambda: [], seed=train_cfg.seed)
        previous = json.loads(run.summary.read_text()) if run.summary.is_file() else {}
        policy.source, policy.parent_version = (
            previous.get("started_from", policy.source),
            previous.get("parent"),
        )
    else:
        run = None  # created once there is something to train on
        policy = starting_policy(options.model, corpus=_corpus(reader, filt), seed=train_cfg.seed, cfg=cfg)

    budget = context.train_tokens
    max_positions = getattr(policy.model.config, "max_position_embeddings", None)
    if max_positions:
        budget = min(budget, int(max_positions))  # never let the model's window cut an answer
    log = TruncationLog()
    rows = list(
        iter_sft_examples(
            reader, policy.tokenizer, budget=budget, policy=context.truncation, filt=filt, log=log
        )
    )
    con.close()
    if not rows:
        raise TrainingDataError(
            f"no usable sft_examples rows in {cfg.duckdb_path} (filter {filt}; truncation {log.summary()})"
        )
    run = run or runs.new_run(cfg.data_dir, TRAINER)
    log.write_jsonl(run.truncation_log)
    dataset = Dataset.from_dict(
        {"input_ids": [r["input_ids"] for r in rows], "assistant_masks": [r["assistant_masks"] for r in rows]}
    )
    lr = options.learning_rate or (
        train_cfg.tiny_learning_rate if policy.is_tiny else train_cfg.sft_learning_rate
    )
    args = _sft_args(cfg, options, run, learning_rate=lr, max_length=budget)
    truncation = log.summary()
    summary: dict[str, Any] = {
        "trainer": TRAINER,
        "policy_version": run.policy_version,
        "parent": policy.parent_version,
        "started_from": policy.source,
        "arm": options.arm,
        "options": asdict(options),
        "rows": len(rows),
        "budget_tokens": budget,
        "truncation": truncation,
        "learning_rate": lr,
    }
    runs.write_summary(run, summary)
    with event_sink(cfg, options.emit_events) as emit:
        callback = TrainingStepEvents(
            emit,
            trainer=TRAINER,
            policy_version=run.policy_version,
            samples_per_step=train_cfg.sft_batch_size * train_cfg.gradient_accumulation_steps,
            extra_metrics=lambda: {f"rows_{k}": float(v) for k, v in truncation.items()},
            on_event=options.on_step,
        )
        trainer = SFTTrainer(
            model=policy.model,
            args=args,
            train_dataset=dataset,
            processing_class=policy.tokenizer,
            callbacks=[
                callback,
                *skill_eval_callbacks(
                    cfg, options.eval_suite, run.policy_version, policy.tokenizer, emit, options.arm
                ),
            ],
        )
        trainer.remove_callback(PrinterCallback)  # our events (and on_step) report each step
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume_from)
        trainer.save_model(str(run.final))
        policy.tokenizer.save_pretrained(str(run.final))
    losses = [e["loss"] for e in callback.emitted if e["loss"] is not None]
    summary.update(
        steps=int(result.global_step),
        seconds=round(time.perf_counter() - started, 2),
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        events=len(callback.emitted),
        final=str(run.final),
    )
    runs.write_summary(run, summary)
    runs.record_latest(
        cfg.data_dir,
        TRAINER,
        run,
        {"steps": summary["steps"], "last_loss": summary["last_loss"]},
        arm=options.arm,
    )
    return summary
