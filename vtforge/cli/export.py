"""``vtforge export otel``: traced events as OpenTelemetry spans, to any OTLP/HTTP receiver.
``vtforge export check``: the dataset exports against their provenance manifests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from vtforge.cli._common import CliError, ConfigOption, config_from, console

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str | None) -> datetime | None:
    """``24h`` / ``30m`` / ``7d`` ago, or an ISO date or time (UTC when it names no zone)."""
    if not text:
        return None
    ago = _AGO.match(text.strip())
    if ago:
        return datetime.now(UTC) - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"--since {text!r}: use an ISO date or time, or a span like 30m, 24h, 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Send warehouse data to other tools.", no_args_is_help=True)
    app.add_typer(group, name="export")

    @group.command("check")
    def check(
        config: ConfigOption = None,
        folder: Path | None = typer.Option(  # noqa: B008
            None, "--folder", help="Exports folder (default <data_dir>/exports)."
        ),
    ) -> None:
        """Compare every export folder's manifest with its files (hash, rows, task ids, extras)."""
        from vtforge.warehouse.export_manifest import check_manifest
        from vtforge.warehouse.exports import GROUPS

        root = folder or config_from(config).data_dir / "exports"
        problems = [p for group in GROUPS for p in check_manifest(root, group)]
        for problem in problems:
            console.print(problem)
        if problems:
            raise CliError(f"{len(problems)} export file(s) differ from their manifests in {root}")
        console.print(f"exports in {root} match their manifests ({', '.join(GROUPS)})")

    @group.command("otel")
    def otel(
        config: ConfigOption = None,
        endpoint: str = typer.Option(
            None, "--endpoint", help="OTLP/HTTP base URL (default forge.otel.endpoint, Phoenix's :6006)."
        ),
        since: str = typer.Option(None, "--since", help="Only events at or after: 24h, 7d, or an ISO time."),
        project: str = typer.Option(None, "--project", help="Project name (default forge.otel.project)."),
    ) -> None:
        """Send every traced event (self-play rounds, …) as spans, GenAI semantic conventions."""
        import duckdb

        from vtforge.warehouse.connection import WarehouseBusy
        from vtforge.warehouse.otel import export, span_records
        from vtforge.warehouse.reader import open_reader

        cfg = config_from(config)
        settings = cfg.forge.otel
        target = endpoint or settings.endpoint
        try:
            con = open_reader(cfg)
        except WarehouseBusy as exc:
            raise CliError(str(exc)) from None
        try:
            spans = span_records(con, since=parse_since(since), capture_content=settings.capture_content)
        except duckdb.CatalogException as exc:
            raise CliError(
                f"no warehouse to read spans from ({exc}); run `vtforge materialize` first"
            ) from None
        finally:
            con.close()
        if not spans:
            console.print("no traced events to send")
            return
        try:
            sent = export(spans, target, project=project or settings.project)
        except Exception as exc:  # a refused or unreachable receiver: one line, not a traceback
            raise CliError(f"OTLP export to {target} failed: {exc}") from None
        traces = len({s.trace_id for s in spans})
        console.print(f"sent {sent} spans in {traces} traces to {target}")
