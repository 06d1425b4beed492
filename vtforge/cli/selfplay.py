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

from vtforge import constants as C
from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.config import Config


def load_tasks(cfg: Config, tasks: str) -> list[Any]:
    """A JSON/JSONL file of SWE-bench records with ``repo_dir``, else a task-bank slice name."""
    path = Path(tasks)
    if path.suffix in (".jsonl", ".json") or path.is_file():
        if not path.is_file():
            raise CliError(f"--tasks: file not found: {path}")
        from vtforge.sandbox.evaluate import read_records

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
            None,
            "--engine",
            help="openai | vllm | transformers | llamacpp | replay (default: config; with --model, "
            "llamacpp for a GGUF model, transformers for a folder).",
        ),
        model: str = typer.Option(
            None,
            "--model",
            help="A forge.models name (e.g. smollm2-135m) or a local GGUF file / model folder "
            "(default: forge.selfplay.engine_model). openai: the served model's name.",
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
        max_new_tokens: int = typer.Option(
            None,
            "--max-new-tokens",
            min=1,
            help="Completion length (default: forge.selfplay.max_new_tokens; llamacpp: at most "
            "forge.selfplay.llamacpp_max_new_tokens).",
        ),
        synthesis: bool = typer.Option(True, "--synthesis/--no-synthesis", help="Synthesise a final patch."),
        policy_version: str = typer.Option(
            None, "--policy-version", help="Recorded on every event (default: model)."
        ),
        run_id: str = typer.Option(None, "--run-id", help="Run id (default: time-based)."),
        resume: bool = typer.Option(
            False,
            "--resume",
            help="Continue the killed run --run-id from its journal: finished tasks are skipped, "
            "journaled samples are not generated again.",
        ),
        config: ConfigOption = None,
    ) -> None:
        """Sample patches and tests, run the execution matrix, select, reward, catalogue false positives."""
        cfg = config_from(config)
        if resume and run_id is None:
            raise CliError("--resume needs --run-id (the run to continue)")
        sp = cfg.forge.selfplay
        from vtforge.models import ModelError
        from vtforge.selfplay.engines import ENGINES, engine_for_model, make_engine

        if engine is None and model is not None:
            try:
                engine_name = engine_for_model(cfg, model)
            except ModelError as exc:
                raise CliError(str(exc)) from None
        else:
            engine_name = engine or sp.engine
        if engine_name not in ENGINES:
            raise CliError(f"--engine must be one of {', '.join(ENGINES)}, got {engine_name!r}")
        if model is not None and engine_name == "replay":
            raise CliError("--model does not apply to --engine replay (recorded completions)")
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
                from vtforge.fixtures.completions import make_records, write_records

                count = write_records(
                    target, make_records(task_list, patches=max(40, n_patches), tests=max(40, n_tests))
                )
                console.print(f"wrote {count} [bold]synthetic[/] recorded completions to {target}")
            replay_file = str(target)
        try:
            chosen = make_engine(cfg, engine_name, replay_file=replay_file, model=model)
        except ValueError as exc:  # ModelError included: one line naming what to install or set
            raise CliError(str(exc)) from None
        except ImportError as exc:
            raise CliError(f"--engine {engine_name}: {exc} (pip install 'vtforge[train]')") from None
        summary = run_selfplay(
            cfg,
            task_list,
            chosen,
            patches=n_patches,
            tests=n_tests,
            rounds=rounds,
            synthesis=synthesis,
            policy_version=policy_version or chosen.model,
            run_id=run_id,
            max_new_tokens=max_new_tokens,
            resume=resume,
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
    max_new_tokens: int | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Self-play rounds over ``task_list``, journaled per task (``selfplay.journal``): with
    ``resume``, a killed run continues where it stopped, without generating a journaled sample
    again; without it, a run id that has a journal is refused."""
    from vtforge.sandbox.api import SandboxUnavailable, open_sandbox
    from vtforge.selfplay.catalog import Catalog
    from vtforge.selfplay.journal import TaskJournal, journal_dir
    from vtforge.selfplay.loop import Options, run_task
    from vtforge.selfplay.sampling import Schedule
    from vtforge.selfplay.selection import Weights
    from vtforge.transport import sink_from_config

    sp = cfg.forge.selfplay
    schedule = Schedule.for_engine(sp, engine, max_new_tokens)
    max_tokens = schedule.max_tokens
    lever = (
        "--max-new-tokens"
        if max_new_tokens is not None
        else "forge.selfplay.llamacpp_max_new_tokens"
        if max_tokens < sp.max_new_tokens
        else "forge.selfplay.max_new_tokens"
    )
    try:
        window = request_window(cfg, engine, max_tokens, lever=lever)
    except CliError:
        engine.close()
        raise
    base_id = run_id or f"selfplay-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    round_ids = [f"{base_id}-r{i}" if rounds > 1 else base_id for i in range(1, rounds + 1)]
    journaled = [r for r in round_ids if journal_dir(cfg.data_dir, r).exists()]
    if journaled and not resume:
        engine.close()
        raise CliError(
            f"run {base_id} has a journal ({journal_dir(cfg.data_dir, journaled[0])}): "
            "pass --resume to continue it, or another --run-id"
        )
    catalog = Catalog(cfg.data_dir)
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
        "window": window,
        "max_new_tokens": max_tokens,
        "resumed_tasks": 0,
        "skipped_tasks": 0,
    }
    meter = Meter()
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
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[step]}"),
    )
    with (
        box,
        engine,
        sink_from_config(cfg, producer="vtforge.selfplay") as sink,
        Progress(*columns, console=console) as progress,
    ):
        bar = progress.add_task("self-play", total=len(task_list) * rounds, step="", rate="")

        def sampled(rollout: Any) -> None:
            meter.add(rollout)
            progress.update(bar, rate=meter.line())

        def stream(events: list[dict[str, Any]]) -> None:
            stats["events"] += sink.emit_many(events)

        for round_index, round_id in enumerate(round_ids, start=1):
            opts = Options(
                patches=patches,
                tests=tests,
                run_id=round_id,
                policy_version=policy_version,
                round_index=round_index,
                synthesis=synthesis,
                synthesis_top_n=sp.synthesis_top_n,
                inject_counterexamples=sp.inject_counterexamples,
                majority_vote=cfg.forge.selection.majority_vote,
                max_localized_files=sp.max_localized_files,
                flaky_reruns=sp.flaky_reruns,
                budget_tokens=window,
            )
            for task in task_list:
                progress.update(bar, description=f"round {round_index}: {task.task_id}"[:60])
                journal = TaskJournal.for_task(cfg.data_dir, round_id, task.task_id, flush=sink.flush)
                if journal.finished is not None:  # its events were acknowledged before the kill
                    for key in ("rollouts", "unique_patches", "runs", "events"):
                        stats[key] += journal.finished[key]
                    stats["selected_resolved"] += journal.finished["selected_resolved"]
                    stats["false_positives"] += journal.finished["false_positives"]
                    stats["tasks"] += 1
                    stats["skipped_tasks"] += 1
                    progress.advance(bar)
                    continue
                report = run_task(
                    task,
                    engine,
                    box,
                    opts,
                    schedule=schedule,
                    weights=weights,
                    catalog=catalog,
                    progress=lambda step: progress.update(bar, step=step),
                    stream=stream,
                    on_rollout=sampled,
                    journal=journal,
                )
                sink.emit_many(report.events)
                sink.flush()
                done = {
                    "rollouts": len(report.rollouts),
                    "unique_patches": len(report.patches),
                    "runs": report.matrix.runs if report.matrix else 0,
                    "events": len(report.events),
                    "selected_resolved": int(bool(report.selected_resolved)),
                    "false_positives": len(report.false_positives),
                }
                journal.finish(done)
                for key, value in done.items():
                    stats[key] += value
                stats["tasks"] += 1
                stats["resumed_tasks"] += report.resumed
                if report.error:
                    stats["errors"].append(f"{task.task_id}: {report.error}")
                progress.advance(bar)
    stats["seconds"] = time.perf_counter() - started
    stats.update(meter.summary())
    stats["run_id"] = base_id
    stats["catalog"] = str(catalog.path)
    return stats


def request_window(
    cfg: Config, engine: Any, max_tokens: int, *, lever: str = "forge.selfplay.max_new_tokens"
) -> int:
    """A request's window (prompt + completion): ``forge.selfplay.context_tokens``,
    ``forge.context.inference_tokens`` and the model's own window, the smallest; a completion
    length (set by ``lever``) that leaves too little of it for a prompt is an error naming it."""
    sp = cfg.forge.selfplay
    window = min(sp.context_tokens, cfg.forge.context.inference_tokens)
    model_window = getattr(engine, "context_window", None)
    if model_window:
        window = min(window, int(model_window))
    room, least = window - max_tokens, C.SELFPLAY_MIN_PROMPT_TOKENS
    if room < least:
        raise CliError(
            f"{lever} = {max_tokens} leaves {max(room, 0)} of the {window}-token window (min of "
            f"forge.selfplay.context_tokens, forge.context.inference_tokens"
            f"{' and the model' if model_window else ''}) for prompts; self-play needs at least "
            f"{least}: lower it to ≤ {max(window - least, 1)}"
        )
    return window


class Meter:
    """Samples and completion tokens so far, against the seconds the engine spent on them."""

    def __init__(self) -> None:
        self.samples = 0
        self.tokens = 0
        self.parsed = 0
        self.engine_s = 0.0
        self.started = time.perf_counter()
        self.last = self.started

    def add(self, rollout: Any) -> None:
        completion = rollout.completion
        self.samples += 1
        self.parsed += int(rollout.ok)
        self.tokens += int(completion.completion_tokens or 0)
        self.engine_s += max(float(completion.latency_ms or 0.0) / 1000, 0.0)
        self.last = time.perf_counter()

    def rates(self) -> tuple[float, float]:
        seconds = self.engine_s or (self.last - self.started)
        return (self.samples / seconds, self.tokens / seconds) if seconds > 0 else (0.0, 0.0)

    def line(self) -> str:
        per_sample, per_token = self.rates()
        return f"{self.samples} samples · {per_sample:.2f} samples/s · {per_token:.0f} tok/s"

    def summary(self) -> dict[str, Any]:
        per_sample, per_token = self.rates()
        return {
            "samples": self.samples,
            "parsed": self.parsed,
            "completion_tokens": self.tokens,
            "engine_seconds": self.engine_s,
            "samples_per_s": per_sample,
            "tokens_per_s": per_token,
        }


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
    if stats.get("resumed_tasks") or stats.get("skipped_tasks"):
        table.add_row(
            "resumed (finished before) tasks", f"{stats['resumed_tasks']} ({stats['skipped_tasks']})"
        )
    table.add_row("seconds", f"{stats['seconds']:.1f}")
    if "samples" in stats:
        table.add_row("samples (parsed)", f"{stats['samples']} ({stats['parsed']})")
        table.add_row("completion tokens", str(stats["completion_tokens"]))
        table.add_row("engine seconds", f"{stats['engine_seconds']:.1f}")
        table.add_row(
            "samples/s, tokens/s (engine time)", f"{stats['samples_per_s']:.2f}, {stats['tokens_per_s']:.1f}"
        )
    console.print(table)
    console.print(f"false-positive catalog: {stats['catalog']}")
    for error in stats["errors"]:
        console.print(f"[yellow]warning:[/] {error}")
