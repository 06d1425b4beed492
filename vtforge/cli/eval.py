"""``vtforge eval``: grade SWE-bench predictions in the sandbox, like SWE-bench's harness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        instances: Annotated[
            Path,
            typer.Option("--instances", help="SWE-bench instances (.jsonl/.json/.parquet) with repo_dir."),
        ],
        predictions: Annotated[
            Path,
            typer.Option("--predictions", help="Predictions: instance_id, model_name_or_path, model_patch."),
        ],
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
        from sandbox.api import SandboxUnavailable, open_sandbox
        from sandbox.evaluate import check_predictions, check_runnable, evaluate, read_records
        from vtforge.transport import sink_from_config

        cfg = config_from(config)
        for label, path in (("--instances", instances), ("--predictions", predictions)):
            if not path.is_file():
                raise CliError(f"{label}: file not found: {path}")
        try:
            instance_rows = read_records(instances)
            prediction_rows = read_records(predictions)
        except (ValueError, OSError) as exc:
            raise CliError(str(exc)) from None
        for path, rows in ((instances, instance_rows), (predictions, prediction_rows)):
            for number, row in enumerate(rows, start=1):
                if not isinstance(row, dict) or "instance_id" not in row:
                    raise CliError(f"{path}: record {number} has no field instance_id")
        run = run_id if run_id is not None else predictions.stem
        if not run or "/" in run or run in (".", ".."):
            raise CliError(f"--run-id {run!r}: must be a non-empty name without '/'", code=2)
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
