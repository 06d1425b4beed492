"""``vtforge config show|set``."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.config import ConfigError, effective_items, set_value, write_target


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Show or change the [forge.*] levers in vtcode.toml.", no_args_is_help=True)
    app.add_typer(group, name="config")

    @group.command("show")
    def show(
        config: ConfigOption = None,
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Print the effective config and where each value came from."""
        cfg = config_from(config)
        items = effective_items(cfg)
        if as_json:
            typer.echo(json.dumps({k: {"value": v, "origin": str(o)} for k, v, o in items}, indent=2))
            return
        table = Table(title=f"effective config (files: {', '.join(map(str, cfg.files)) or 'none'})")
        table.add_column("key", overflow="fold")
        table.add_column("value", overflow="fold")
        table.add_column("from", overflow="fold")
        for key, value, origin in items:
            table.add_row(key, json.dumps(value), str(origin))
        console.print(table)

    @group.command("set")
    def set_(key: str, value: str, config: ConfigOption = None) -> None:
        """Write forge.KEY = VALUE, keeping comments and VT Code's own sections."""
        try:
            target = set_value(write_target(config), key, value)
        except ConfigError as exc:
            raise CliError(str(exc), code=2) from None
        console.print(f"set {key} = {value} in {target}")
