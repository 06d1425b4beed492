"""``vtforge materialize``: run the warehouse asset graph in this process (no UI needed).

Runs are recorded in the same Dagster instance the UI shows (``<data_dir>/dagster``), and take the
warehouse's writer lock like every other writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console

if TYPE_CHECKING:
    from vtforge.config import Config


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # step logs stay in the run's log


@dataclass
class MaterializeOutcome:
    """What one in-process run did."""

    success: bool
    run_id: str
    rows: dict[str, int] = field(default_factory=dict)
    checks: list[tuple[str, str, bool, str, str]] = field(
        default_factory=list
    )  # asset, check, passed, sev, text
    skipped: list[str] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[tuple[str, str, bool, str, str]]:
        return [c for c in self.checks if not c[2] and c[3] == "ERROR"]


def run_materialize(
    config: Config, select: list[str] | None = None, *, full: bool = False
) -> MaterializeOutcome:
    """Materialise the warehouse graph (or ``select``, Dagster's asset selection syntax) in-process.

    Models update incrementally; ``full`` tags the run so that every model is rebuilt from scratch."""
    from dagster import AssetSelection

    from vtforge.pipelines.assets import FULL_REBUILD_TAG
    from vtforge.pipelines.definitions import build_definitions
    from vtforge.pipelines.instance import open_instance

    config_file = str(config.files[-1]) if config.files else None
    defs = build_definitions(config_file)
    instance = open_instance(config)
    tags = {FULL_REBUILD_TAG: "true"} if full else None
    if select:
        graph = defs.resolve_asset_graph()
        selection = AssetSelection.from_string(select[0])
        for more in select[1:]:
            selection = selection | AssetSelection.from_string(more)
        try:
            keys = sorted(selection.resolve(graph), key=lambda k: k.to_user_string())
        except Exception as exc:  # dagster raises several types for a bad selection
            raise CliError(f"--select: {exc}", code=2) from None
        if not keys:
            raise CliError(f"--select {' '.join(select)} matches no asset", code=2)
        job = defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            instance=instance, asset_selection=keys, raise_on_error=False, run_config=QUIET, tags=tags
        )
    else:
        job = defs.resolve_job_def("warehouse_job")
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET, tags=tags)
    outcome = MaterializeOutcome(success=result.success, run_id=result.run_id)
    for event in result.get_asset_materialization_events():
        materialization = getattr(event.event_specific_data, "materialization", None)
        if materialization is None:
            continue
        count = materialization.metadata.get("dagster/row_count")
        outcome.rows[materialization.asset_key.to_user_string()] = int(count.value) if count else -1
    for evaluation in result.get_asset_check_evaluations():
        outcome.checks.append(
            (
                evaluation.asset_key.to_user_string(),
                evaluation.check_name,
                evaluation.passed,
                evaluation.severity.value,
                evaluation.description or "",
            )
        )
    outcome.skipped = sorted(
        e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED" and e.step_key
    )
    return outcome


def print_outcome(outcome: MaterializeOutcome) -> None:
    table = Table(title=f"materialised (run {outcome.run_id[:8]})")
    table.add_column("asset")
    table.add_column("rows", justify="right")
    for key, rows in sorted(outcome.rows.items()):
        table.add_row(key, str(rows) if rows >= 0 else "")
    console.print(table)
    checks = Table(title="asset checks")
    for column in ("asset", "check", "result", "detail"):
        checks.add_column(column, overflow="fold")
    for asset, name, passed, severity, text in outcome.checks:
        verdict = (
            "[green]passed[/]" if passed else ("[red]FAILED[/]" if severity == "ERROR" else "[yellow]warn[/]")
        )
        checks.add_row(asset, name, verdict, text)
    console.print(checks)
    if outcome.skipped:
        console.print(f"[yellow]skipped after a failure:[/] {', '.join(outcome.skipped)}")


def register(app: typer.Typer) -> None:
    @app.command("materialize")
    def materialize(
        config: ConfigOption = None,
        select: list[str] = typer.Option(  # noqa: B008
            None,
            "--select",
            "-s",
            help="Dagster asset selection: 'sft_examples', '+rl_prompts', 'group:telemetry' … (repeatable).",
        ),
        full: bool = typer.Option(
            False,
            "--full",
            help="Rebuild every model from scratch instead of only the tasks new events touch.",
        ),
    ) -> None:
        """Materialise the warehouse asset graph in-process: raw → curated → datasets and telemetry."""
        cfg = config_from(config)
        outcome = run_materialize(cfg, select or None, full=full)
        print_outcome(outcome)
        if not outcome.success or outcome.failed_checks:
            failed = ", ".join(f"{a}:{n}" for a, n, *_ in outcome.failed_checks) or "a step failed"
            raise CliError(f"materialisation did not complete: {failed} (run {outcome.run_id})")
        console.print(f"warehouse: {cfg.duckdb_path}")


def demo_step(config: Config) -> bool:
    """For ``vtforge demo``: fill the warehouse, write the report, say how to look at both."""
    from vtforge.warehouse.reader import open_reader
    from vtforge.warehouse.report import build_report

    outcome = run_materialize(config)
    print_outcome(outcome)
    with open_reader(config) as con:
        report = build_report(con, config.data_dir / "report")
    console.print(f"report: {report.index} ({len(report.pngs)} plots; `vtforge report` rebuilds it)")
    console.print("asset UI: `vtforge ui` then open http://127.0.0.1:3000 ; SQL: `vtforge sql`")
    return outcome.success and not outcome.failed_checks
