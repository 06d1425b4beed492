"""``vtforge evaluate``: measure policies on a held-out suite (docs/EVALUATION.md).

The same evaluation the trainers run after each epoch (``vtforge.trainers.skill_eval``), by hand: each
``--policy`` (a training run's policy version, a ``forge.models`` name or a Hugging Face folder) is
played by the transformers engine on the suite, decontaminated first; one ``skill_evaluation``
event per metric and one ``evaluation_result`` per suite task go to the configured sink, and a
table shows one row per policy and metric.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console

if TYPE_CHECKING:
    from vtforge.config import Config

PolicyOption = typer.Option(
    None,
    "--policy",
    metavar="POLICY",
    help="A training run's policy version, a forge.models name or a model folder (repeatable).",
)


def policy_engine(cfg: Config, policy: str) -> tuple[Callable[[], Any], int]:
    """How to play ``policy``, and its training step (0 when unknown): a training run's ``final/``
    on the transformers engine; a ``forge.models`` name or local model on the engine its source
    runs on (a GGUF source on llama.cpp, a Hugging Face folder on transformers)."""
    from vtforge.trainers.skill_eval import transformers_engine

    run = cfg.data_dir / "trainers" / policy
    if (run / "final").is_dir():
        summary = run / "run.json"
        steps = json.loads(summary.read_text()).get("steps") if summary.is_file() else None
        return (lambda: transformers_engine(cfg, folder=run / "final", name=policy)), int(steps or 0)
    from vtforge.models import ModelError, known_models
    from vtforge.selfplay.engines import engine_for_model, make_engine

    if policy not in known_models(cfg) and not Path(policy).expanduser().exists():
        raise CliError(
            f"--policy {policy}: not a training run under {cfg.data_dir / 'trainers'}, "
            "a forge.models name or a model folder"
        )
    try:
        if engine_for_model(cfg, policy) == "llamacpp":
            return (lambda: make_engine(cfg, "llamacpp", model=policy)), 0
        from vtforge.trainers.common import model_folder

        folder = model_folder(cfg, policy)
    except ModelError as exc:
        raise CliError(f"--policy {policy}: {exc}") from None
    return (lambda: transformers_engine(cfg, folder=folder, name=policy)), 0


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        policies: list[str] = PolicyOption,
        suite: str = typer.Option(
            None, "--suite", help="A forge.eval.suites name (default: forge.eval.default_suite)."
        ),
        samples: int = typer.Option(
            None, "--samples", min=1, help="BugFixer and TestWriter samples per task (forge.eval.samples)."
        ),
        max_new_tokens: int = typer.Option(
            None, "--max-new-tokens", min=1, help="Completion cap (forge.eval.max_new_tokens)."
        ),
        limit: int = typer.Option(None, "--limit", min=1, help="Suite tasks at most (forge.eval.limit)."),
        arm: str = typer.Option(None, "--arm", help="Label the evaluations with this arm."),
        mode: str = typer.Option(
            None,
            "--mode",
            help="agentless (localize → repair → test → select) | agentic (multi-turn tool loop); "
            "default forge.eval.mode.",
        ),
        latest: bool = typer.Option(
            False,
            "--latest",
            help="Also the latest policy of each trainer (sft, grpo) and of each recipe arm trained here "
            "(labelled with its arm); nothing trained yet is not an error (Dagster's recurring_evaluation).",
        ),
        config: ConfigOption = None,
    ) -> None:
        """Measure each policy on a held-out suite: localization accuracy, patch acceptance,
        fail-before-fix task rate and resolve rate (docs/SELFPLAY.md, Recipe metrics)."""
        from vtforge.cli.train import _import_trainers
        from vtforge.trainers.suites import SuiteError, load_suite

        cfg = config_from(config)
        if mode is not None and mode not in ("agentless", "agentic"):
            raise CliError(f"--mode must be agentless or agentic, got {mode!r}", code=2)
        arms: dict[str, str | None] = {p: arm for p in policies or []}  # policy -> its arm label
        if latest:
            from vtforge.trainers.runs import read_latest

            trained = read_latest(cfg.data_dir)
            for trainer in ("sft", "grpo"):
                if trainer in trained:
                    arms.setdefault(trained[trainer]["policy_version"], None)
            for name, entry in sorted(trained.get("arms", {}).items()):
                arms[entry["policy_version"]] = name  # the latest policy of each recipe arm
            if not arms:
                console.print("nothing to evaluate: no policy trained here yet")
                return
        if not arms:
            raise CliError("give --policy P (repeatable) or --latest", code=2)
        policies = list(arms)
        try:
            chosen = load_suite(cfg, suite, limit=limit)
        except SuiteError as exc:
            raise CliError(str(exc)) from None
        if not chosen.tasks:
            raise CliError(
                f"suite {chosen.name}: no task left to evaluate ({len(chosen.dropped)} of "
                f"{chosen.candidates} dropped by decontamination; see docs/research/suites/{chosen.name}.md)"
            )
        _import_trainers()  # the train extra, with the CLI's quiet settings
        engines = {p: policy_engine(cfg, p) for p in policies}
        from vtforge.sandbox.api import SandboxUnavailable, open_sandbox
        from vtforge.trainers.skill_eval import evaluate_policy, evaluation_run_id
        from vtforge.transport import sink_from_config

        dropped = f", {len(chosen.dropped)} dropped by decontamination" if chosen.dropped else ""
        console.print(
            f"suite [bold]{chosen.name}[/] ({chosen.source}): {len(chosen.tasks)} tasks{dropped}",
            highlight=False,
        )
        try:
            box = open_sandbox(cfg)
        except SandboxUnavailable as exc:
            raise CliError(f"forge.sandbox.backend = {cfg.forge.sandbox.backend}: {exc}") from None
        results = []
        with box, sink_from_config(cfg, producer="vtforge.cli.evaluate") as sink:
            for policy, (make, step) in engines.items():
                try:
                    engine = make()
                except (ValueError, ImportError) as exc:  # ModelError included
                    raise CliError(f"--policy {policy}: {exc}") from None
                with engine:
                    results.append(
                        evaluate_policy(
                            cfg,
                            chosen,
                            engine,
                            box,
                            sink.emit,
                            policy_version=policy,
                            run_id=evaluation_run_id(policy, chosen.name),
                            samples=samples,
                            max_new_tokens=max_new_tokens,
                            step=step,
                            arm=arms[policy],
                            mode=mode,
                            progress=lambda task_id, p=policy: console.print(
                                f"[dim]{p}: {task_id}[/]", highlight=False
                            ),
                        )
                    )
                sink.flush()
        shown_mode = mode or cfg.forge.eval.mode
        table = Table(title=f"{shown_mode} skill evaluation on {chosen.name} ({len(chosen.tasks)} tasks)")
        for column in ("policy", "metric", "value", "n", "run"):
            table.add_column(column)
        for result in results:
            for metric, (value, n) in result.metrics.items():
                shown = "" if value is None else f"{value:.3f}"
                table.add_row(result.policy_version, metric, shown, str(n), result.run_id)
        console.print(table)
        events = sum(r.events for r in results)
        console.print(
            f"{events} events emitted (skill_evaluation, evaluation_result); `vtforge materialize` "
            "fills skill_evaluations and evaluations",
            highlight=False,
        )
