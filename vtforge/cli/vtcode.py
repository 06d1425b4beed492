"""``vtforge vtcode tail|exec|ingest|hook|notify|drain|status|unknown``: live VT Code sessions."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console, err_console
from vtforge.config import Config, ConfigError, load_config


def _config_for(workspace: Path | None, config: Path | None) -> Config:
    """``--config`` if given, else the workspace's own vtcode.toml (else the current one)."""
    try:
        return load_config(config, cwd=workspace.resolve() if workspace else None)
    except ConfigError as exc:
        raise CliError(str(exc), code=2) from None


def _context(cfg: Config, workspace: Path, source: str):  # -> MappingContext
    from vtforge.vtcode.mapping import MappingContext
    from vtforge.vtcode.tailer import agent_settings

    model, temperature = agent_settings(workspace)
    return MappingContext(
        model=model,
        temperature=temperature,
        source=source,
        max_message_chars=cfg.forge.vtcode.max_message_chars,
    )


group = typer.Typer(
    help="Stream live VT Code sessions (events.jsonl, trajectory log, exec, hooks) into vtforge.",
    no_args_is_help=True,
)


@group.command("tail")
def tail(
    workspace: Annotated[Path | None, typer.Argument(help="VT Code workspace (default: here).")] = None,
    config: ConfigOption = None,
    once: bool = typer.Option(False, "--once", help="Read what is there now, then exit."),
    interval: float | None = typer.Option(None, "--interval", help="Seconds between polls."),
) -> None:
    """Follow every session's events.jsonl and the trajectory log; emit through the sink."""
    from vtforge.transport import SinkError, sink_from_config
    from vtforge.vtcode.deliver import spool_for
    from vtforge.vtcode.tailer import WorkspaceTailer

    root = (workspace or Path.cwd()).resolve()
    if not root.is_dir():
        raise CliError(f"workspace {root} is not a directory")
    cfg = _config_for(root, config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sink = sink_from_config(cfg, producer="vtforge.vtcode")
    tailer = WorkspaceTailer(
        root,
        sink,
        cursor_root=cfg.data_dir / "vtcode" / "cursors",
        spool=spool_for(cfg),
        quarantine_dir=cfg.quarantine_dir,
        max_message_chars=cfg.forge.vtcode.max_message_chars,
    )

    def report(stats) -> None:
        if stats.events or stats.quarantined or stats.drained or stats.errors:
            err_console.print(
                f"vtcode tail: {stats.lines} lines → {stats.events} events"
                f" ({stats.quarantined} quarantined, {stats.drained} from spool,"
                f" {stats.realigned} realigned, {stats.restarted} restarted)",
                highlight=False,
            )
        for error in stats.errors:
            err_console.print(f"[yellow]vtcode tail:[/] {error}", highlight=False)

    if not once:
        err_console.print(f"vtcode tail: following {root} (Ctrl-C to stop)", highlight=False)
    try:
        total = tailer.run(
            interval_s=interval or cfg.forge.vtcode.poll_interval_s,
            stop=stop,
            max_polls=1 if once else None,
            on_poll=report,
        )
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        total = None
    finally:
        try:
            sink.close()
        except SinkError as exc:
            raise CliError(f"could not deliver the last events: {exc}") from None
    if total is not None:
        console.print(f"{total.lines} lines read, {total.events} events emitted", highlight=False)


@group.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_(
    ctx: typer.Context,
    config: ConfigOption = None,
    session_id: str | None = typer.Option(None, "--session-id", help="Default: the thread id."),
    echo: bool = typer.Option(False, "--echo", help="Also print vtcode's JSON lines."),
    flush_every: float = typer.Option(
        0.5, "--flush-every", help="Seconds at most between a step arriving and it being queryable."
    ),
) -> int:
    """Run `vtcode exec --json ARGS…`, record its event stream as it comes, then reconcile the
    session file vtcode writes at the end (only what the stream lacked is added)."""
    from vtforge.transport import sink_from_config
    from vtforge.vtcode.reconcile import reconcile_session
    from vtforge.vtcode.stream import StreamImporter, exec_workspace, run_exec, vtcode_command

    cfg = config_from(config)
    command = vtcode_command(cfg.forge.vtcode.binary, list(ctx.args))
    workspace = exec_workspace(list(ctx.args), Path.cwd())
    with sink_from_config(cfg, producer="vtforge.vtcode") as sink:
        importer = StreamImporter(
            sink,
            context=_context(cfg, cfg.root, "exec"),
            session_id=session_id,
            quarantine_dir=cfg.quarantine_dir,
            source_name="vtcode-exec",
            flush_every_s=flush_every,
        )
        try:
            code = run_exec(command, importer, echo=sys.stdout if echo else None, cwd=Path.cwd())
        except FileNotFoundError:
            raise CliError(
                f"{command[0]} not found (forge.vtcode.binary; install VT Code or set the path)"
            ) from None
        result = importer.result
        added = streamed = 0
        if result.session_id and session_id is None:
            added, streamed, _ = reconcile_session(
                workspace,
                result.session_id,
                sink,
                seen=importer.emitted,
                cursor_root=cfg.data_dir / "vtcode" / "cursors",
                quarantine_dir=cfg.quarantine_dir,
                max_message_chars=cfg.forge.vtcode.max_message_chars,
            )
    err_console.print(
        f"vtcode exec: session {result.session_id}: {result.lines} lines → {result.events} events"
        f" ({len(result.rejected)} quarantined); session file: {streamed} already streamed,"
        f" {added} added; vtcode exited {code}",
        highlight=False,
    )
    return code


# "import": a saved stream becomes events; "ingest" is the Kafka consumer's word (hidden alias kept)
@group.command("ingest", hidden=True)
@group.command("import")
def import_stream(
    path: Annotated[
        str, typer.Argument(help="A saved `vtcode exec --json` stream or events.jsonl; - = stdin.")
    ],
    config: ConfigOption = None,
    session_id: str | None = typer.Option(None, "--session-id", help="Default: the thread id."),
) -> None:
    """Import a saved event stream (from a file or stdin) with the same mapping as exec."""
    from vtforge.transport import sink_from_config
    from vtforge.vtcode.stream import StreamImporter, stdin_lines

    cfg = config_from(config)
    if path != "-" and not Path(path).is_file():
        raise CliError(f"no such file: {path}")
    with sink_from_config(cfg, producer="vtforge.vtcode") as sink:
        importer = StreamImporter(
            sink,
            context=_context(cfg, cfg.root, "stream"),
            session_id=session_id,
            quarantine_dir=cfg.quarantine_dir,
            source_name="stdin" if path == "-" else path,
        )
        if path == "-":
            result = importer.feed(stdin_lines())
        else:
            with open(path, encoding="utf-8", errors="replace") as handle:
                result = importer.feed(handle)
    console.print(
        f"session {result.session_id}: {result.lines} lines → {result.events} events"
        f" ({len(result.rejected)} quarantined)",
        highlight=False,
    )


@group.command("hook")
def hook(
    config: ConfigOption = None,
    inline: bool = typer.Option(False, "--inline", help="Deliver in-process (within hook_timeout_s)."),
) -> None:
    """Lifecycle-hook command: reads the hook payload on stdin, emits one event, exits 0 fast."""
    from vtforge.vtcode.hooks import handle

    handle("hook", sys.stdin.read(), config_path=config, inline=inline)


@group.command("notify")
def notify(
    payload: Annotated[str, typer.Argument(help="The JSON argument VT Code's `notify` passes.")],
    config: ConfigOption = None,
    inline: bool = typer.Option(False, "--inline", help="Deliver in-process (within hook_timeout_s)."),
) -> None:
    """`notify` program: one JSON argument (agent-turn-complete …), one event, exits 0 fast."""
    from vtforge.vtcode.hooks import handle

    handle("notify", payload, config_path=config, inline=inline)


@group.command("drain")
def drain(config: ConfigOption = None) -> None:
    """Send the events hook/notify spooled to the sink (also done by every tail poll)."""
    from vtforge.transport import SinkError
    from vtforge.vtcode.deliver import drain_spool, spool_for

    cfg = config_from(config)
    spool = spool_for(cfg)
    waiting = len(spool.pending())
    try:
        sent = drain_spool(cfg)
    except SinkError as exc:
        raise CliError(f"sink unavailable, {waiting} events stay spooled: {exc}") from None
    console.print(f"{sent} spooled events delivered, {len(spool.pending())} left", highlight=False)


@group.command("status")
def status(
    workspace: Annotated[Path | None, typer.Argument(help="VT Code workspace (default: here).")] = None,
    config: ConfigOption = None,
) -> None:
    """What the tailer has read per file: offsets, turns, steps, kept unknown records."""
    from vtforge.vtcode.cursors import CursorStore
    from vtforge.vtcode.deliver import spool_for

    root = (workspace or Path.cwd()).resolve()
    cfg = _config_for(root, config)
    table = Table(title=f"vtcode tail cursors for {root}")
    for column in ("file", "read", "size", "turns", "steps", "unknown", "newer schema", "done"):
        table.add_column(column, overflow="fold")
    for cursor in CursorStore(cfg.data_dir / "vtcode" / "cursors", root).all():
        path = Path(cursor.path)
        size = path.stat().st_size if path.exists() else None
        state = cursor.state
        unknown = state.get("unknown_types") or {}
        table.add_row(
            str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
            str(cursor.offset),
            "gone" if size is None else str(size),
            str(state.get("turn", "")),
            str(state.get("steps", state.get("lines", ""))),
            ", ".join(f"{k}×{v}" for k, v in sorted(unknown.items())) or "0",
            str(state.get("newer_schema_records", 0)),
            "yes" if state.get("completed") else "",
        )
    console.print(table)
    console.print(f"spooled events waiting: {len(spool_for(cfg).pending())}", highlight=False)


@group.command("unknown")
def unknown(config: ConfigOption = None) -> None:
    """Kept records of types (or schema versions) the mapping does not know, by type."""
    from vtforge.vtcode.queries import unknown_records

    cfg = config_from(config)
    rows = unknown_records(cfg.landing_dir)
    table = Table(title="vtcode records kept as kind 'other' (raw JSON preserved)")
    for column in ("type", "schema_version", "records", "sessions"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="vtcode")
