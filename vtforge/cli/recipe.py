"""``vtforge recipe run --arm agentless|agentic|staged --model BASE``: one arm of the recipe.

The seed's claim is that agentless training gives skill priors that make agentic RL better; the
three arms test it with the same budgets (``forge.recipe``):

- **agentless**: SFT on the agentless data only (``forge.recipe.sft_steps``);
- **agentic**: GRPO from the base model, no agentless SFT (``forge.recipe.grpo_steps``);
- **staged**: the same SFT → the warehouse → the promotion gates (``vtforge gates --promote``) →
  the warehouse → GRPO from the SFT policy, only if it was promoted (``--force``: anyway, recorded).

Every policy is tagged with its arm (``run.json``, ``latest.json``'s ``arms``, the skill
evaluations' ``arm``), measured after each epoch on ``forge.recipe.eval_suite`` when a suite is
set, so ``leaderboard`` compares the arms and ``vtforge evaluate --latest`` re-measures them.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from vtforge import constants as C
from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.config import Config

EXIT_NOT_PROMOTED = 3


def refresh_warehouse(cfg: Config) -> None:
    """What the previous step emitted, into the warehouse (through Kafka first when that is the sink)."""
    from vtforge.warehouse.refresh import refresh

    if cfg.forge.events.sink == "kafka":
        from vtforge.ingest import Ingestor

        Ingestor(cfg, once=True).run()
    refresh(cfg, exports=False)


def promote(cfg: Config, policy_version: str) -> tuple[bool, str]:
    """``vtforge gates --promote`` on ``policy_version``: (promoted, reason), the decision emitted."""
    from vtforge.trainers.gates import GateDataError, GateReport, check_gates
    from vtforge.trainers.promotion import PRODUCER, promotion_event
    from vtforge.transport import sink_from_config

    try:
        report = check_gates(cfg, policy_version)
    except GateDataError:
        report = GateReport(policy_version)
    event = promotion_event(report)
    with sink_from_config(cfg, producer=PRODUCER) as sink:
        sink.emit(event)
    return event["decision"] == "promoted", event["reason"]


def run_arm(
    cfg: Config,
    arm: str,
    *,
    model: str | None,
    reward: str = "sandbox",
    force: bool = False,
    eval_suite: str | None = None,
    on_step: Any = None,
) -> dict[str, Any]:
    """Train one arm; returns {"arm", "sft": summary | None, "promotion": (promoted, reason) | None,
    "grpo": summary | None}. Raises ``vtforge.trainers.promotion.NotPromoted`` when staged GRPO may not
    start."""
    from vtforge.trainers.grpo import GrpoOptions, run_grpo
    from vtforge.trainers.sft import SftOptions, run_sft

    recipe = cfg.forge.recipe
    suite = eval_suite or recipe.eval_suite or cfg.forge.eval.default_suite
    out: dict[str, Any] = {"arm": arm, "sft": None, "promotion": None, "grpo": None}
    start = model
    if arm in ("agentless", "staged"):
        sft = SftOptions(model=model, max_steps=recipe.sft_steps, eval_suite=suite, arm=arm, on_step=on_step)
        out["sft"] = run_sft(cfg, sft)
        start = out["sft"]["final"]
    if arm == "staged":
        refresh_warehouse(cfg)
        out["promotion"] = promote(cfg, out["sft"]["policy_version"])
        refresh_warehouse(cfg)
    if arm in ("agentic", "staged"):
        grpo = GrpoOptions(
            model=start,
            max_steps=recipe.grpo_steps,
            reward=reward,
            eval_suite=suite,
            arm=arm,
            force=force,
            on_step=on_step,
        )
        out["grpo"] = run_grpo(cfg, grpo)
    return out


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The recipe's arms: agentless, agentic, staged.", no_args_is_help=True)
    app.add_typer(group, name="recipe")

    @group.command("run")
    def recipe_run(
        arm: str = typer.Option(..., "--arm", help="agentless | agentic | staged"),
        model: str = typer.Option(
            None, "--model", metavar="NAME|PATH", help="The base model (default: the tiny model)."
        ),
        reward: str = typer.Option("sandbox", "--reward", help="sandbox (execution outcome) | bandit (toy)."),
        eval_suite: str = typer.Option(
            None, "--eval-suite", help="Measure after each epoch (default: forge.recipe.eval_suite)."
        ),
        force: bool = typer.Option(
            False, "--force", help="staged: GRPO from the SFT policy even when it was rejected (recorded)."
        ),
        config: ConfigOption = None,
    ) -> None:
        """Train one arm of the recipe with forge.recipe's budgets; every policy is tagged with the arm."""
        if arm not in C.RECIPE_ARMS:
            raise CliError(f"--arm must be one of {', '.join(C.RECIPE_ARMS)}, got {arm!r}", code=2)
        if reward not in ("sandbox", "bandit"):
            raise CliError(f"--reward must be sandbox or bandit, got {reward!r}", code=2)
        cfg = config_from(config)
        from vtforge.cli.train import _import_trainers, _print, _step_line

        _import_trainers()
        from vtforge.models import ModelError
        from vtforge.trainers.promotion import NotPromoted
        from vtforge.trainers.readers import ReaderError
        from vtforge.trainers.sft import TrainingDataError

        try:
            out = run_arm(
                cfg, arm, model=model, reward=reward, force=force, eval_suite=eval_suite, on_step=_step_line
            )
        except NotPromoted as exc:
            raise CliError(f"staged: GRPO not started: {exc}", code=EXIT_NOT_PROMOTED) from None
        except (ReaderError, TrainingDataError, FileNotFoundError, ModelError) as exc:
            raise CliError(str(exc)) from None
        for trainer in ("sft", "grpo"):
            if out[trainer] is not None:
                _print(out[trainer])
            if trainer == "sft" and out["promotion"] is not None:
                promoted, reason = out["promotion"]
                verdict = "[green]promoted[/]" if promoted else "[red]rejected[/]"
                console.print(f"  gates: {verdict} ({escape(reason)})", highlight=False, soft_wrap=True)
        versions = [out[t]["policy_version"] for t in ("sft", "grpo") if out[t] is not None]
        console.print(f"arm [bold]{arm}[/]: {', '.join(versions)}", highlight=False)
