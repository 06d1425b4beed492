"""``vtforge selfplay``: Stage 3 self-play over a slice of the task bank."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.config import Config


def load_tasks(cfg: Config, tasks: str) -> list[Any]:
    """A JSON/JSONL file of SWE-bench records with ``repo_dir``, else a task-bank slice name."""
    path = Path(tasks)
    if path.suffix in (".jsonl", ".json") or path.is_file():
        if not path.is_file():
            raise CliError(f"--tasks: file not found: {path}")
        from sandbox.evaluate import read_records

        try:
            return read_records(path)
        except ValueError as exc:
            raise CliError(f"--tasks: {exc}") from None
    try:
        if tasks == "demo":
            try:
                from vtforge.tasks.demo import ensure_demo_bank
            except ImportError:
                pass  # no demo builder: read the slice as it is
            else:
                return list(ensure_demo_bank(cfg))
        from vtforge.tasks.bank import load_slice

        return list(load_slice(cfg, tasks))
    except ImportError as exc:
        raise CliError(
            f"--tasks {tasks}: the task bank is not available ({exc}); pass a JSONL file"
        ) from None
    except ValueError as exc:
        raise CliError(f"--tasks {tasks}: {exc}") from None


def default_replay_file(cfg: Config, tasks: str) -> Path:
    name = Path(tasks).stem if tasks.endswith((".jsonl", ".json")) else tasks
    return cfg.data_dir / "selfplay" / "replay" / f"{name}.jsonl"


def register(app: typer.Typer) -> None:
    @app.command("selfplay")
    def selfplay(
        tasks: str = typer.Option(
            ..., "--tasks", help="Task-bank slice (e.g. demo) or a JSONL file of tasks."
        ),
        engine: str = typer.Option(
            None, "--engine", help="openai | vllm | transformers | replay (default: config)."
        ),
        patches: int = typer.Option(
            None, "--patches", min=1, help="BugFixer rollouts per task (default: config)."
        ),
        tests: int = typer.Option(
            None, "--tests", min=1, help="TestWriter rollouts per task (default: config)."
        ),
        replay: str = typer.Option(None, "--replay", help="Recorded completions (JSONL) or 'warehouse'."),
        make_replay: bool = typer.Option(
            True,
            "--make-replay/--no-make-replay",
            help="replay: if the file is missing, first write labelled SYNTHETIC completions for the slice.",
        ),
        rounds: int = typer.Option(
            1, "--rounds", min=1, help="Rounds; later ones inject catalogued counterexamples."
        ),
        limit: int = typer.Option(None, "--limit", min=1, help="Only the first N tasks."),
        synthesis: bool = typer.Option(True, "--synthesis/--no-synthesis", help="Synthesise a final patch."),
        policy_version: str = typer.Option(
            None, "--policy-version", help="Recorded on every event (default: model)."
        ),
        run_id: str = typer.Option(None, "--run-id", help="Run id (default: time-based)."),
        config: ConfigOption = None,
    ) -> None:
        """Sample patches and tests, run the execution matrix, select, reward, catalogue false positives."""
        cfg = config_from(config)
        sp = cfg.forge.selfplay
        engine_name = engine or sp.engine
        if engine_name not in ("openai", "vllm", "transformers", "replay"):
            raise CliError(f"--engine must be one of openai, vllm, transformers, replay, got {engine_name!r}")
        n_patches, n_tests = patches or sp.bugfixer_rollouts, tests or sp.testwriter_rollouts
        records = load_tasks(cfg, tasks)
        from vtforge.selfplay.task import as_selfplay_task

        try:
            task_list = [as_selfplay_task(r) for r in records][: limit or None]
        except ValueError as exc:
            raise CliError(f"--tasks: {exc}") from None
        if not task_list:
            raise CliError(f"--tasks {tasks}: no tasks")

        replay_file = replay
        if engine_name == "replay" and replay_file is None and sp.replay_file is None:
            target = default_replay_file(cfg, tasks)
            if not target.exists():
                if not make_replay:
                    raise CliError(
                        f"replay file not found: {target} (run scripts/make_replay_completions.py)"
                    )
                from vtforge.selfplay.recorded import make_records, write_records

                count = write_records(
                    target, make_records(task_list, patches=max(40, n_patches), tests=max(40, n_tests))
                )
                console.print(f"wrote {count} [bold]synthetic[/] recorded completions to {target}")
            replay_file = str(target)
        from vtforge.selfplay.engines import make_engine

        try:
            model = make_engine(cfg, engine_name, replay_file=replay_file)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        summary = run_selfplay(
            cfg,
            task_list,
            model,
            patches=n_patches,
            tests=n_tests,
            rounds=rounds,
            synthesis=synthesis,
            policy_version=policy_version or model.model,
            run_id=run_id,
        )
        print_summary(summary)


def run_selfplay(
    cfg: Config,
    task_list: list[Any],
    engine: Any,
    *,
    patches: int,
    tests: int,
    rounds: int = 1,
    synthesis: bool = True,
    policy_version: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    from sandbox.api import SandboxUnavailable, open_sandbox
    from vtforge.selfplay.catalog import Catalog
    from vtforge.selfplay.loop import Options, run_task
    from vtforge.selfplay.sampling import Schedule
    from vtforge.selfplay.selection import Weights
    from vtforge.transport import sink_from_config

    sp = cfg.forge.selfplay
    base_id = run_id or f"selfplay-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    catalog = Catalog(cfg.data_dir)
    schedule = Schedule.from_config(sp)
    weights = Weights.from_config(cfg.forge.selection)
    stats: dict[str, Any] = {
        "tasks": 0,
        "rollouts": 0,
        "unique_patches": 0,
        "runs": 0,
        "events": 0,
        "selected_resolved": 0,
        "false_positives": 0,
        "errors": [],
        "rounds": rounds,
    }
    started = time.perf_counter()
    try:
        box = open_sandbox(cfg)
    except SandboxUnavailable as exc:
        raise CliError(f"forge.sandbox.backend = {cfg.forge.sandbox.backend}: {exc}") from None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[step]}"),
    )
    with (
        box,
        engine,
        sink_from_config(cfg, producer="vtforge.selfplay") as sink,
        Progress(*columns, console=console) as progress,
    ):
        bar = progress.add_task("self-play", total=len(task_list) * rounds, step="")
        for round_index in range(1, rounds + 1):
            opts = Options(
                patches=patches,
                tests=tests,
                run_id=f"{base_id}-r{round_index}" if rounds > 1 else base_id,
                policy_version=policy_version,
                round_index=round_index,
                synthesis=synthesis,
                synthesis_top_n=sp.synthesis_top_n,
                inject_counterexamples=sp.inject_counterexamples,
                majority_vote=cfg.forge.selection.majority_vote,
                max_localized_files=sp.max_localized_files,
                flaky_reruns=sp.flaky_reruns,
                budget_tokens=cfg.forge.context.inference_tokens,
            )
            for task in task_list:
                progress.update(bar, description=f"round {round_index}: {task.task_id}"[:60])
                report = run_task(
                    task,
                    engine,
                    box,
                    opts,
                    schedule=schedule,
                    weights=weights,
                    catalog=catalog,
                    progress=lambda step: progress.update(bar, step=step),
                )
                sink.emit_many(report.events)
                sink.flush()
                stats["tasks"] += 1
                stats["rollouts"] += len(report.rollouts)
                stats["unique_patches"] += len(report.patches)
                stats["runs"] += report.matrix.runs if report.matrix else 0
                stats["events"] += len(report.events)
                stats["selected_resolved"] += bool(report.selected_resolved)
                stats["false_positives"] += len(report.false_positives)
                if report.error:
                    stats["errors"].append(f"{task.task_id}: {report.error}")
                progress.advance(bar)
    stats["seconds"] = time.perf_counter() - started
    stats["run_id"] = base_id
    stats["catalog"] = str(catalog.path)
    return stats


def print_summary(stats: dict[str, Any]) -> None:
    table = Table(title=f"self-play {stats['run_id']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, key in (
        ("task rounds", "tasks"),
        ("rollouts", "rollouts"),
        ("unique patches", "unique_patches"),
        ("sandbox runs", "runs"),
        ("events", "events"),
        ("selected patch resolves", "selected_resolved"),
        ("false positives catalogued", "false_positives"),
    ):
        table.add_row(label, str(stats[key]))
    table.add_row("seconds", f"{stats['seconds']:.1f}")
    console.print(table)
    console.print(f"false-positive catalog: {stats['catalog']}")
    for error in stats["errors"]:
        console.print(f"[yellow]warning:[/] {error}")
