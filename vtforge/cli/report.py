"""``vtforge report``: a static HTML report of the telemetry, with its plots as PNG files."""

from __future__ import annotations

from pathlib import Path

import typer

from vtforge.cli._common import CliError, ConfigOption, config_from, console


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        config: ConfigOption = None,
        output: Path = typer.Option(  # noqa: B008
            None, "--output", "-o", help="Folder to write (default <data_dir>/report)."
        ),
    ) -> None:
        """Write index.html and PNG plots of the telemetry over policy versions and training steps."""
        from vtforge.warehouse.connection import WarehouseBusy
        from vtforge.warehouse.reader import open_reader
        from vtforge.warehouse.report import build_report

        cfg = config_from(config)
        folder = output or cfg.data_dir / "report"
        try:
            con = open_reader(cfg)
        except WarehouseBusy as exc:
            raise CliError(str(exc)) from None
        try:
            built = build_report(con, folder)
        finally:
            con.close()
        console.print(f"report: {built.index} ({len(built.pngs)} plots)")
        for png in built.pngs:
            console.print(f"  {png}", highlight=False)
