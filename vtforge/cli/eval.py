"""``vtforge eval``: grade SWE-bench predictions in the sandbox, like SWE-bench's harness."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.config import Config


def model_label(model: str) -> str:
    """A file-name-safe label for ``--model`` (a registry name as it is, a path by its stem)."""
    name = Path(model).stem if ("/" in model or model.endswith(".gguf")) else model
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "model"


def write_predictions(
    cfg: Config,
    instances: Path,
    rows: list[dict[str, Any]],
    model: str,
    engine_name: str | None,
    max_new_tokens: int | None,
    run: str,
    target: Path,
) -> Path:
    """SWE-bench predictions from ``model`` for ``rows``, written to ``target`` (JSON Lines); the
    model's rollouts go out as ``rollout`` events (stage eval) like any other sample."""
    from vtforge.models import ModelError
    from vtforge.selfplay.archive import Archive
    from vtforge.selfplay.engines import ENGINES, engine_for_model, make_engine
    from vtforge.selfplay.loop import prompt_budget
    from vtforge.selfplay.predict import predict
    from vtforge.selfplay.sampling import Schedule
    from vtforge.selfplay.task import as_selfplay_task
    from vtforge.transport import sink_from_config

    try:
        tasks = [as_selfplay_task(r) for r in rows]
        name = engine_name or engine_for_model(cfg, model)
    except ValueError as exc:  # ModelError included
        raise CliError(f"{instances}: {exc}" if not isinstance(exc, ModelError) else str(exc)) from None
    if name not in ENGINES or name == "replay":
        raise CliError(
            f"--engine must be one of {', '.join(e for e in ENGINES if e != 'replay')}, got {name!r}"
        )
    try:
        chosen = make_engine(cfg, name, model=model)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(f"--engine {name}: {exc} (pip install 'vtforge[model]')") from None
    sp = cfg.forge.selfplay
    schedule = Schedule.for_engine(sp, chosen, max_new_tokens)
    window = min(sp.context_tokens, cfg.forge.context.inference_tokens)
    target.parent.mkdir(parents=True, exist_ok=True)
    label = model_label(model)
    parsed = 0
    with (
        chosen,
        sink_from_config(cfg, producer="vtforge.selfplay") as sink,
        target.open("w", encoding="utf-8") as out,
        Progress(
            TextColumn("[bold]predict"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
        ) as progress,
    ):
        bar = progress.add_task("", total=len(tasks))
        budget = prompt_budget(window, chosen, schedule.max_tokens)
        for task in tasks:
            archive = Archive(run_id=run, task_id=task.task_id, policy_version=label, engine=chosen.name)
            made = predict(
                task,
                chosen,
                model_name=label,
                run_id=run,
                schedule=schedule,
                limit=sp.max_localized_files,
                budget=budget,
                on_rollout=lambda r, a=archive: sink.emit(a.sampled(r)),
            )
            parsed += bool(made.model_patch)
            out.write(json.dumps(made.record()) + "\n")
            out.flush()
            progress.update(
                bar, advance=1, description=f"{task.task_id}: {'patch' if made.model_patch else 'empty'}"
            )
    console.print(f"{parsed}/{len(tasks)} predictions hold a patch ({chosen.name}, {label}) -> {target}")
    return target


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        instances: Annotated[
            Path,
            typer.Option("--instances", help="SWE-bench instances (.jsonl/.json/.parquet) with repo_dir."),
        ],
        predictions: Annotated[
            Path | None,
            typer.Option(
                "--predictions",
                help="Predictions: instance_id, model_name_or_path, model_patch. With --model: where the "
                "model's predictions are written (default <report-dir>/predictions/<model>.<run id>.jsonl).",
            ),
        ] = None,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                help="Write the predictions first with this model (a forge.models name, a GGUF file or a "
                "model folder): localization, then one BugFixer patch per instance.",
            ),
        ] = None,
        engine: Annotated[
            str | None,
            typer.Option(
                "--engine",
                help="With --model: llamacpp | transformers | vllm | openai (default: llamacpp for a "
                "GGUF model, transformers for a folder).",
            ),
        ] = None,
        max_new_tokens: Annotated[
            int | None,
            typer.Option("--max-new-tokens", min=1, help="With --model: completion length of a sample."),
        ] = None,
        backend: Annotated[
            str | None,
            typer.Option("--backend", help="local | docker | kubernetes (else forge.sandbox.backend)."),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option("--workers", min=1, help="Parallel runs (else forge.sandbox.concurrency)."),
        ] = None,
        report_dir: Annotated[
            Path,
            typer.Option(
                "--report-dir",
                help="Where logs/run_evaluation/<run id>/... and <model>.<run id>.json go.",
            ),
        ] = Path("evaluation"),
        run_id: Annotated[
            str | None,
            typer.Option(
                "--run-id", help="Names this run's folder and report (else the predictions file's stem)."
            ),
        ] = None,
        flaky_reruns: Annotated[
            int, typer.Option("--flaky-reruns", min=0, help="Reruns of failing tests.")
        ] = 1,
        config: ConfigOption = None,
    ) -> None:
        """Run each prediction (its patch, then the test patch); write SWE-bench's logs and run report."""
        from vtforge.sandbox.api import SandboxUnavailable, open_sandbox
        from vtforge.sandbox.evaluate import check_predictions, check_runnable, evaluate, read_records
        from vtforge.transport import sink_from_config

        cfg = config_from(config)
        if predictions is None and model is None:
            raise CliError("give --predictions (a predictions file) or --model (to write them first)", code=2)
        if model is None and (engine is not None or max_new_tokens is not None):
            raise CliError("--engine and --max-new-tokens apply only with --model", code=2)
        if not instances.is_file():
            raise CliError(f"--instances: file not found: {instances}")
        if model is None and not predictions.is_file():
            raise CliError(f"--predictions: file not found: {predictions}")
        try:
            instance_rows = read_records(instances)
        except (ValueError, OSError) as exc:
            raise CliError(str(exc)) from None
        for number, row in enumerate(instance_rows, start=1):
            if not isinstance(row, dict) or "instance_id" not in row:
                raise CliError(f"{instances}: record {number} has no field instance_id")
        if run_id is not None:
            run = run_id
        elif predictions is not None:
            run = predictions.stem
        else:
            run = f"{model_label(model)}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        if not run or "/" in run or run in (".", ".."):
            raise CliError(f"--run-id {run!r}: must be a non-empty name without '/'", code=2)
        if model is not None:
            target = predictions or report_dir / "predictions" / f"{model_label(model)}.{run}.jsonl"
            predictions = write_predictions(
                cfg, instances, instance_rows, model, engine, max_new_tokens, run, target
            )
        try:
            prediction_rows = read_records(predictions)
        except (ValueError, OSError) as exc:
            raise CliError(str(exc)) from None
        for number, row in enumerate(prediction_rows, start=1):
            if not isinstance(row, dict) or "instance_id" not in row:
                raise CliError(f"{predictions}: record {number} has no field instance_id")
        try:
            check_predictions(instance_rows, prediction_rows)
        except ValueError as exc:
            raise CliError(f"{predictions}: {exc}") from None
        try:
            check_runnable(instance_rows, prediction_rows)
        except ValueError as exc:
            raise CliError(f"{instances}: {exc}") from None
        name = backend or cfg.forge.sandbox.backend
        if name not in ("local", "docker", "kubernetes"):
            raise CliError(f"--backend must be local, docker or kubernetes, got {name!r}", code=2)
        try:
            box = open_sandbox(cfg, backend=name)
        except SandboxUnavailable as exc:
            raise CliError(f"sandbox backend {name}: {exc}") from None
        report_dir.mkdir(parents=True, exist_ok=True)
        columns = (
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
        )
        with (
            box,
            sink_from_config(cfg, producer="vtforge.sandbox.eval") as sink,
            Progress(*columns, console=console, transient=False) as progress,
        ):
            task = progress.add_task("", total=len(prediction_rows))

            def done(outcome) -> None:
                r = outcome.report[outcome.instance_id]
                mark = "resolved" if r["resolved"] else ("infra" if r["infra_failure"] else "unresolved")
                progress.update(task, advance=1, description=f"{outcome.instance_id}: {mark}")

            try:
                summaries = evaluate(
                    box,
                    instance_rows,
                    prediction_rows,
                    report_dir,
                    run_id=run,
                    workers=workers or cfg.forge.sandbox.concurrency,
                    emit=sink.emit,
                    on_done=done,
                    flaky_reruns=flaky_reruns,
                )
            except ValueError as exc:
                raise CliError(str(exc)) from None
        table = Table(title=f"evaluation {run} ({name} backend) -> {report_dir}")
        columns_ = ("model", "submitted", "completed", "resolved", "unresolved", "empty patch", "error")
        for column in (*columns_, "incomplete", "infra failure", "run report"):
            table.add_column(column)
        for model, s in sorted(summaries.items()):
            table.add_row(
                model,
                *(
                    str(len(ids))
                    for ids in (
                        s.submitted_ids,
                        s.completed_ids,
                        s.resolved_ids,
                        s.unresolved_ids,
                        s.empty_patch_ids,
                        s.error_ids,
                        s.incomplete_ids,
                        s.infra_failure_ids,
                    )
                ),
                s.file_name,
            )
        console.print(table)
