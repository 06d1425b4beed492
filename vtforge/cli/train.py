"""``vtforge train sft|grpo``: Stage 1 cold-start SFT and Stage 2 GRPO from the warehouse.

Without ``--model`` SFT builds a tiny random model (so it runs anywhere, on a CPU, in seconds), and
GRPO starts from the latest SFT policy, else a tiny model. ``--model`` takes a registry name
(``forge.models``, e.g. ``smollm2-135m``, converted once to a Hugging Face folder) or a local model
folder. Heavy libraries (torch, transformers, TRL) are imported only when a command runs.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import typer
from rich.markup import escape

from vtforge.cli._common import CliError, ConfigOption, config_from, console

ModelOption = typer.Option(
    None,
    "--model",
    metavar="NAME|PATH",
    help="A registry name (forge.models, e.g. smollm2-135m) or a local model folder; default: tiny "
    "(grpo: the latest SFT policy, else tiny).",
)
SplitOption = typer.Option("train", "--split", help="Rows of this split.")
RoleOption = typer.Option(None, "--role", help="Only these roles (repeatable), e.g. bugfixer.")
EventsOption = typer.Option(True, "--events/--no-events", help="Emit training_step events.")
EvalSuiteOption = typer.Option(
    None,
    "--eval-suite",
    metavar="NAME",
    help="Measure the policy on this forge.eval.suites suite every forge.eval.every_epochs epochs "
    "and at the end (docs/EVALUATION.md).",
)
EXIT_NOT_PROMOTED = 3  # GRPO's start policy is not promoted (and no --force)


def _quiet() -> None:
    """No hub, no telemetry, no library deprecation noise in the CLI's output."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:
        pass


def _import_trainers():
    try:
        _quiet()
        from vtforge.trainers import grpo, sft
    except ImportError as exc:
        raise CliError(
            f"the train extra is not installed ({exc}); run `uv pip install -e '.[train]'`"
        ) from None
    return sft, grpo


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Train on the warehouse's datasets (SFT cold start, then GRPO).", no_args_is_help=True
    )
    app.add_typer(group, name="train")

    @group.command("sft")
    def train_sft(
        model: str = ModelOption,
        max_steps: int = typer.Option(20, "--max-steps", min=1, help="Optimiser steps."),
        split: str = SplitOption,
        role: list[str] = RoleOption,
        source_version: str = typer.Option(
            None, "--source-version", help="Only rows of this policy_version."
        ),
        resume: str = typer.Option(None, "--resume", help="Continue the run of this policy version."),
        eval_suite: str = EvalSuiteOption,
        events: bool = EventsOption,
        config: ConfigOption = None,
    ) -> None:
        """Cold-start SFT on sft_examples (loss on the assistant's answer only, packed)."""
        cfg = config_from(config)
        sft, _ = _import_trainers()
        from vtforge.models import ModelError
        from vtforge.trainers.readers import ReaderError

        options = sft.SftOptions(
            model=model,
            max_steps=max_steps,
            split=split or None,
            slice={"role": list(role)} if role else {},
            source_version=source_version,
            resume=resume,
            emit_events=events,
            eval_suite=eval_suite,
            on_step=_step_line,
        )
        try:
            summary = sft.run_sft(cfg, options)
        except (ReaderError, sft.TrainingDataError, FileNotFoundError, ModelError) as exc:
            raise CliError(str(exc)) from None
        _print(summary)

    @group.command("grpo")
    def train_grpo(
        model: str = ModelOption,
        max_steps: int = typer.Option(10, "--max-steps", min=1, help="Optimiser steps."),
        split: str = SplitOption,
        reward: str = typer.Option("sandbox", "--reward", help="sandbox (execution outcome) | bandit (toy)."),
        max_completion_tokens: int = typer.Option(
            None, "--max-completion-tokens", min=1, help="Default: forge.train.max_completion_tokens."
        ),
        num_generations: int = typer.Option(
            None, "--num-generations", min=2, help="Samples per prompt; default forge.train.num_generations."
        ),
        include_unmeasured: bool = typer.Option(
            False,
            "--include-unmeasured",
            help="Also draw tasks with no measured baseline (bucket 'unmeasured'); default: measured only.",
        ),
        frozen_localization: str = typer.Option(
            None,
            "--frozen-localization",
            metavar="POLICY",
            help="Freeze localization: train on this policy version's files (e.g. the SFT policy).",
        ),
        force: bool = typer.Option(
            False,
            "--force",
            help="Start from a policy that is not promoted (recorded as a forced decision in the events).",
        ),
        eval_suite: str = EvalSuiteOption,
        events: bool = EventsOption,
        config: ConfigOption = None,
    ) -> None:
        """GRPO on rl_prompts with the execution-outcome reward, curriculum and replay; starts only
        from a promoted policy (`vtforge gates --promote`) or a base model, unless --force."""
        cfg = config_from(config)
        if reward not in ("sandbox", "bandit"):
            raise CliError(f"--reward must be sandbox or bandit, got {reward!r}", code=2)
        _, grpo = _import_trainers()
        from vtforge.models import ModelError
        from vtforge.trainers.readers import ReaderError
        from vtforge.trainers.sft import TrainingDataError

        options = grpo.GrpoOptions(
            model=model,
            max_steps=max_steps,
            split=split or None,
            reward=reward,
            max_completion_tokens=max_completion_tokens,
            num_generations=num_generations,
            emit_events=events,
            on_step=_step_line,
            include_unmeasured=include_unmeasured,
            frozen_localization=frozen_localization,
            force=force,
            eval_suite=eval_suite,
        )
        from vtforge.trainers.promotion import NotPromoted

        try:
            summary = grpo.run_grpo(cfg, options)
        except NotPromoted as exc:
            raise CliError(str(exc), code=EXIT_NOT_PROMOTED) from None
        except (ReaderError, TrainingDataError, FileNotFoundError, RuntimeError, ModelError) as exc:
            raise CliError(str(exc)) from None
        _print(summary)


def _step_line(event: dict) -> None:
    parts = [f"step {event['step']}"]
    for name in ("loss", "reward_mean", "kl", "grad_norm", "tokens_per_s"):
        if event.get(name) is not None:
            parts.append(f"{name} {event[name]:.4g}")
    if event.get("checkpoint_path"):
        parts.append(f"saved {Path(event['checkpoint_path']).name}")
    console.print("  " + ", ".join(parts), highlight=False, soft_wrap=True)


def _print(summary: dict) -> None:
    print_ = functools.partial(console.print, soft_wrap=True, highlight=False)
    print_(
        f"[bold]{summary['trainer']}[/] policy [cyan]{summary['policy_version']}[/] "
        f"(from {summary['started_from']}): {summary['steps']} steps in {summary['seconds']} s, "
        f"{summary['events']} training_step events"
    )
    if summary["trainer"] == "sft":
        print_(
            f"  rows {summary['rows']}, loss {summary['first_loss']:.4f} -> {summary['last_loss']:.4f}, "
            f"truncation {summary['truncation']}"
        )
    else:
        means = ", ".join(f"{m:.2f}" for m in summary["reward_means"])
        print_(
            f"  prompts {summary['prompts']}, replay rows {summary['replay_rows']}, reward means [{means}], "
            f"context {summary['budget_tokens']} tokens ({summary['max_completion_tokens']} for answers)"
        )
        print_(f"  groups {summary['filtering']}, curriculum active {summary['curriculum']['active']}")
        promotion = summary.get("promotion") or {}
        if promotion.get("decision") == "forced":
            why = escape(promotion["reason"])
            print_(f"  [yellow]forced[/]: started from {promotion['policy_version']}: {why}")
        elif promotion.get("decision") == "promoted":
            print_(f"  started from promoted policy {promotion['policy_version']}")
        if summary.get("frozen_localization"):
            frozen = summary["frozen_localization"]
            print_(
                f"  localization frozen from {frozen['policy_version']}: {frozen['tasks']} tasks "
                f"({frozen['missing']} rl_prompts tasks it never localized are left out)"
            )
    print_(f"  model: {Path(summary['final'])}")
