"""``vtforge gates [--policy-version V] [--promote]``: the promotion gates of a policy, from warehouse
telemetry; with ``--promote`` the decision (promoted | rejected, and why) is recorded as a
``policy_promoted`` event, which ``vtforge train grpo`` reads once the warehouse has it.

Exit codes: 0 every gate passed; 1 a gate failed (or has no telemetry); 2 a config error;
3 the warehouse or its ``curriculum_gates`` table is missing.
"""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console

EXIT_FAILED = 1
EXIT_NO_DATA = 3


def register(app: typer.Typer) -> None:
    @app.command("gates")
    def gates(
        policy_version: str = typer.Option(
            None,
            "--policy-version",
            help="Policy to check (default: the latest trained one, else the newest).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
        promote: bool = typer.Option(
            False, "--promote", help="Record the decision as a policy_promoted event (promoted or rejected)."
        ),
        config: ConfigOption = None,
    ) -> None:
        """Evaluate the curriculum promotion gates; exit non-zero when one fails."""
        from vtforge.trainers.gates import GateDataError, check_gates
        from vtforge.trainers.promotion import decide
        from vtforge.trainers.runs import read_latest

        cfg = config_from(config)
        version = policy_version or read_latest(cfg.data_dir).get("last")
        try:
            report = check_gates(cfg, version)
        except GateDataError as exc:
            raise CliError(str(exc), code=EXIT_NO_DATA) from None
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "policy_version": report.policy_version,
                        "passed": report.passed,
                        "gates": report.as_metadata(),
                    },
                    indent=2,
                )
            )
        else:
            table = Table(title=f"promotion gates for policy {report.policy_version or '(none)'}")
            for column in ("gate", "stage", "threshold", "value", "result"):
                table.add_column(column)
            for r in report.results:
                value = "—" if r.value is None else f"{r.value:.3f}"
                verdict = (
                    "[green]pass[/]" if r.passed else f"[red]FAIL[/]{' (' + r.note + ')' if r.note else ''}"
                )
                table.add_row(r.gate, r.stage or "", f"{r.comparison} {r.threshold:.2f}", value, verdict)
            console.print(table)
        _, reason = decide(report)
        if promote:
            _record(cfg, report)
        if not report.passed:
            raise CliError(f"gates failed for policy {report.policy_version}: {reason}", code=EXIT_FAILED)


def _record(cfg, report) -> None:
    """Emit the decision through the configured sink (acknowledged before the command returns)."""
    from vtforge.trainers.promotion import PRODUCER, promotion_event
    from vtforge.transport import sink_from_config

    if report.policy_version is None:
        raise CliError("nothing to promote: no policy has gate telemetry in the warehouse", code=EXIT_FAILED)
    event = promotion_event(report)
    with sink_from_config(cfg, producer=PRODUCER) as sink:
        sink.emit(event)
    decision = event["decision"]
    colour = "green" if decision == "promoted" else "red"
    console.print(
        f"[{colour}]{decision}[/]: policy {report.policy_version} ({escape(event['reason'])}); recorded as "
        f"policy_promoted {event['promotion_id']} (training sees it after `vtforge materialize`)",
        soft_wrap=True,
        highlight=False,
    )
