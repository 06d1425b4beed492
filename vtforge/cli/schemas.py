"""``vtforge schemas export``: the event schemas as files any Avro tool reads on its own."""

from __future__ import annotations

from pathlib import Path

import typer

from vtforge.cli._common import ConfigOption, config_from, console


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The Avro event schemas.", no_args_is_help=True)
    app.add_typer(group, name="schemas")

    @group.command("export")
    def export(folder: Path, config: ConfigOption = None) -> None:
        """Write every event schema, envelope inlined, to FOLDER as <type>.v<N>.avsc.

        Each file stands alone: `avro-tools fromjson --schema-file`, fastavro's `load_schema` and
        other readers need no second file (schemas/avro/ references vtforge.Envelope by name).
        """
        from vtforge.schemas.catalog import default_catalog, export_resolved

        config_from(config)
        written = export_resolved(default_catalog(), folder)
        console.print(f"{len(written)} schemas → {folder}", highlight=False)
