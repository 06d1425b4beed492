"""``vtforge schemas export|list``: the event schemas as files any Avro tool reads on its own, and
what a producer in another language frames its events with (docs/KAFKA.md, "Producers in other
languages")."""

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

    @group.command("list")
    def list_(config: ConfigOption = None) -> None:
        """Every event type and schema version: its Kafka topic and its single-object header.

        The header is `C3 01` + the CRC-64-AVRO fingerprint (little-endian) of the schema's Parsing
        Canonical Form: the bytes a producer puts before each Avro body. `current` marks the version
        events are read as (older ones still decode, resolved to it).
        """
        from rich.table import Table

        from vtforge.schemas.catalog import default_catalog
        from vtforge.schemas.codec import SINGLE_OBJECT_MAGIC

        cfg = config_from(config)
        catalog = default_catalog()
        table = Table(title="event schemas")
        for column in ("event type", "version", "topic", "single-object header (hex)"):
            table.add_column(column)
        for event_type in catalog.event_types:
            current = catalog.current(event_type).version
            for schema in catalog.versions(event_type):
                version = f"v{schema.version}" + (" (current)" if schema.version == current else "")
                header = (SINGLE_OBJECT_MAGIC + schema.fingerprint).hex(" ")
                table.add_row(event_type, version, cfg.forge.events.topic(event_type), header)
        console.print(table)
