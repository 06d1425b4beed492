"""``vtforge ingest [--once]`` and ``vtforge ingest status``: Kafka topics → landing Parquet."""

from __future__ import annotations

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Consume the event topics into the landing zone (a service; --once drains and exits).",
        invoke_without_command=True,
    )
    app.add_typer(group, name="ingest")

    @group.callback()
    def ingest(
        ctx: typer.Context,
        config: ConfigOption = None,
        once: bool = typer.Option(False, "--once", help="Drain what is in the topics now, then exit."),
        instance_id: str | None = typer.Option(
            None, "--instance-id", help="Static group membership: a restart with this id takes over at once."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every batch."),
    ) -> None:
        if ctx.invoked_subcommand is not None:
            return
        from vtforge.ingest import IngestError
        from vtforge.ingest.service import configure_logging, describe, run_service

        configure_logging(verbose)
        cfg = config_from(config)
        try:
            report = run_service(cfg, once=once, instance_id=instance_id)
        except IngestError as exc:
            raise CliError(str(exc)) from None
        console.print(describe(report), highlight=False)

    @group.command("status")
    def status(
        config: ConfigOption = None,
        all_partitions: bool = typer.Option(
            False, "--all", help="Also list partitions with nothing in them."
        ),
        emit: bool = typer.Option(True, "--emit/--no-emit", help="Also emit the numbers as events."),
    ) -> None:
        """Lag (from the brokers) and throughput (from the running ingestors) per partition."""
        from vtforge.ingest.status import group_status, progress_events
        from vtforge.transport import sink_from_config

        cfg = config_from(config)
        try:
            rows, members = group_status(cfg)
        except Exception as exc:
            raise CliError(
                f"cannot read the group from {cfg.forge.events.bootstrap_servers}: {exc}"
            ) from None
        table = Table(title=f"group {cfg.forge.events.kafka.consumer_group}")
        for col in ("topic", "part", "end", "committed", "lag", "events/s", "owner"):
            table.add_column(col, justify="right" if col not in ("topic", "owner") else "left")
        for row in rows:
            if not all_partitions and row.end == 0:
                continue
            table.add_row(
                row.topic,
                str(row.partition),
                str(row.end),
                "-" if row.committed is None else str(row.committed),
                str(row.lag),
                f"{row.events_per_s:.1f}",
                row.owner or "-",
            )
        console.print(table)
        live = [m for m in members if m["live"]]
        total_lag = sum(r.lag for r in rows)
        console.print(f"total lag {total_lag}; {len(live)} live ingestor(s)")
        if emit:
            with sink_from_config(cfg, producer="vtforge.ingest-status") as sink:
                sent = sink.emit_many(progress_events(cfg, rows))
            console.print(f"emitted {sent} ingest_progress events")
