"""``vtforge events validate|load|tail|export``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vtforge.cli._common import CliError, ConfigOption, config_from, console, err_console

if TYPE_CHECKING:
    from vtforge.transport.files import Checked


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Check, load and watch events.", no_args_is_help=True)
    app.add_typer(group, name="events")

    @group.command("validate")
    def validate(file: Path, config: ConfigOption = None) -> None:
        """Check every record of FILE (.jsonl or .avro) against its schema; exit 1 if any is bad."""
        config_from(config)
        good = bad = 0
        for checked in _records(file):
            if checked.rejected:
                bad += 1
                err_console.print(checked.rejected.error, highlight=False, soft_wrap=True)
            else:
                good += 1
        console.print(f"{file}: {good} valid, {bad} invalid")
        if bad or not good:
            raise typer.Exit(1)

    @group.command("load")
    def load(file: Path, config: ConfigOption = None) -> None:
        """Emit every valid record of FILE through the configured sink; quarantine the rest."""
        from vtforge.transport import sink_from_config
        from vtforge.transport.quarantine import quarantine

        cfg = config_from(config)
        rejected = []
        loaded = 0
        with sink_from_config(cfg, producer="vtforge.events-load") as sink:
            for checked in _records(file):
                if checked.event is not None:
                    sink.emit(checked.event)
                    loaded += 1
                elif checked.rejected is not None:
                    rejected.append(checked.rejected)
                    err_console.print(checked.rejected.error, highlight=False, soft_wrap=True)
        where = quarantine(cfg.quarantine_dir, "events-load", rejected)
        console.print(
            f"{file}: loaded {loaded}, quarantined {len(rejected)}" + (f" ({where})" if where else "")
        )
        if rejected:
            raise typer.Exit(1)

    @group.command("export")
    def export(
        out: Annotated[Path, typer.Option("--out", "-o", help="The file to write (replaced whole).")],
        fmt: str = typer.Option("avro", "--format", "-f", help="avro, parquet or jsonl."),
        codec: str | None = typer.Option(
            None,
            help="null, deflate, snappy or zstandard (default: deflate for avro, zstandard for parquet).",
        ),
        event_types: Annotated[
            list[str] | None,
            typer.Option("--type", help="Only this event type (repeatable); parquet takes one."),
        ] = None,
        since: str | None = typer.Option(None, help="Only events that occurred at or after this ISO time."),
        source: str = typer.Option(
            "landing",
            "--from",
            help="landing (every landed file) or warehouse (what was ingested, as deduplicated there).",
        ),
        config: ConfigOption = None,
    ) -> None:
        """Write the events to one file other tools read (Avro, Parquet, JSON Lines)."""
        from vtforge.transport.export import ExportError, export_events
        from vtforge.warehouse.reader import open_reader, warehouse_events

        if source not in ("landing", "warehouse"):
            raise CliError(f"--from must be landing or warehouse, got {source!r}", code=2)
        cfg = config_from(config)
        con = None
        try:
            if source == "warehouse":
                con = open_reader(cfg)
            exported = export_events(
                cfg.landing_dir,
                out,
                fmt,
                codec=codec,
                event_types=event_types,
                since=_since(since),
                source=warehouse_events(con) if con is not None else None,
            )
        except ExportError as exc:
            raise CliError(str(exc), code=2) from None
        finally:
            if con is not None:
                con.close()
        kinds = ", ".join(f"{n} {t}" for t, n in exported.counts.items())
        console.print(f"{exported.events} events → {out} ({kinds})", highlight=False, soft_wrap=True)

    @group.command("tail")
    def tail(
        config: ConfigOption = None,
        n: int = typer.Option(10, "-n", help="How many of the latest events to show."),
        event_type: str | None = typer.Option(None, "--type", help="Only this event type."),
        follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
        interval: float = typer.Option(1.0, help="Seconds between polls with --follow."),
    ) -> None:
        """Print the latest events in the landing zone as JSON lines."""
        from vtforge.transport.landing import landing_files

        cfg = config_from(config)
        seen: set[Path] = set()
        first = True
        while True:
            files = [
                f
                for f in landing_files(cfg.landing_dir, [event_type] if event_type else None)
                if f not in seen
            ]
            if files:
                for line in _latest(files, n if first else None):
                    typer.echo(line)
                seen.update(files)
            first = False
            if not follow:
                return
            time.sleep(interval)


def _records(file: Path) -> Iterator[Checked]:
    from vtforge.transport.files import read_event_file

    try:
        yield from read_event_file(file)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since: {text!r} is not an ISO-8601 time", code=2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _latest(files: list[Path], n: int | None) -> list[str]:
    """The last ``n`` events (all when None) of these files, oldest first, as JSON lines."""
    import duckdb

    from vtforge.schemas.jsonform import to_jsonable

    paths = ", ".join(f"'{p}'" for p in files)
    limit = f"LIMIT {int(n)}" if n else ""
    query = (
        f"SELECT * FROM (SELECT to_json(t) AS j, t.envelope.occurred_at AS ts "
        f"FROM read_parquet([{paths}], union_by_name = true) t ORDER BY ts DESC {limit}) ORDER BY ts"
    )
    rows = duckdb.connect().execute(query).fetchall()
    return [json.dumps(to_jsonable(json.loads(j))) for j, _ in rows]
