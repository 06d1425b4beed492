"""``vtforge demo``: the main job on the embedded default, end to end on one machine."""

from __future__ import annotations

import time

import typer
from rich.progress import Progress
from rich.table import Table

from vtforge.cli._common import ConfigOption, config_from, console
from vtforge.config import Config


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        config: ConfigOption = None,
        tasks: int = typer.Option(40, help="Synthetic tasks to generate."),
        seed: int = typer.Option(0, help="Seed of the synthetic stream (same seed, same events)."),
    ) -> None:
        """Emit a synthetic self-play stream through the configured sink and summarise it with SQL."""
        cfg = config_from(config)
        emitted = emit_synthetic(cfg, tasks, seed)
        console.print(f"[bold]synthetic stream[/]: {emitted} events through the {cfg.forge.events.sink} sink")
        print_summary(cfg)


def emit_synthetic(cfg: Config, tasks: int, seed: int) -> int:
    """The labelled synthetic stream, through the configured sink (acknowledged on close)."""
    from vtforge.synthetic import generate_events
    from vtforge.transport import sink_from_config

    started = time.perf_counter()
    count = 0
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("emitting synthetic events", total=None)
        with sink_from_config(cfg, producer="vtforge.demo") as sink:
            for event in generate_events(tasks, seed):
                sink.emit(event)
                count += 1
                if count % 500 == 0:
                    progress.update(bar, advance=500)
    console.print(f"  {count} events acknowledged in {time.perf_counter() - started:.2f}s")
    return count


def print_summary(cfg: Config) -> None:
    """Counts per event type and the headline self-play numbers, straight from the landing files."""
    import duckdb

    from vtforge.transport.landing import landing_files

    files = landing_files(cfg.landing_dir)
    if not files:
        console.print("no landing files yet")
        return
    con = duckdb.connect()

    def scan(event_type: str) -> str:
        return f"read_parquet('{cfg.landing_dir}/{event_type}/**/*.parquet', union_by_name = true)"

    types = sorted({f.relative_to(cfg.landing_dir).parts[0] for f in files})
    table = Table(title=f"landing zone: {cfg.landing_dir}")
    for column in ("event type", "events", "distinct ids", "files", "synthetic"):
        table.add_column(column, justify="right" if column != "event type" else "left")
    for event_type in types:
        n, distinct, synthetic = con.execute(
            f"SELECT count(*), count(DISTINCT envelope.event_id), count(*) FILTER (envelope.synthetic) "
            f"FROM {scan(event_type)}"
        ).fetchone()
        n_files = sum(1 for f in files if f.relative_to(cfg.landing_dir).parts[0] == event_type)
        table.add_row(event_type, str(n), str(distinct), str(n_files), str(synthetic))
    console.print(table)
    if {"reward_assigned", "rollout"} <= set(types):
        rows = con.execute(
            f"SELECT r.policy_version, count(*) AS patches, round(avg(r.reward), 3) AS resolve_rate, "
            f"count(DISTINCT r.envelope.task_id) AS tasks "
            f"FROM {scan('reward_assigned')} r WHERE r.subject_kind = 'patch' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        summary = Table(title="self-play outcome (reward = execution outcome only)")
        for column in ("policy", "patches executed", "resolve rate", "tasks"):
            summary.add_column(column)
        for row in rows:
            summary.add_row(*(str(v) for v in row))
        console.print(summary)
