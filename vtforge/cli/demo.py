"""``vtforge demo``: the main job on the embedded default, end to end on one machine.

1. the demo task bank: validated bugs synthesised from real PyPI packages (built once, cached);
2. self-play on it with the ``replay`` engine (recorded, labelled-synthetic completions), so the
   sandbox, the execution matrix, selection, rewards and the false-positive catalog all run, and
   with the real model (SmolLM2-135M-Instruct from PyPI on llama.cpp) on a few tasks at small k;
   a held-out suite (``forge.eval.suites.heldout``): bugs of a package no demo task comes from, in
   the eval split;
3. a labelled synthetic trace stream (upsampled in SFT data, as the recipe does);
4. with ``sink = "kafka"``: the local broker and one ingestion pass;
5. the warehouse: every Dagster asset materialised, plus the HTML report;
6. a short SFT run on a tiny model, whose training steps land as events, measured on the held-out
   suite after each epoch (skill evaluations), and the warehouse again;
7. the promotion gates for the SFT policy, recorded (``vtforge gates --promote``), and the warehouse;
8. a short GRPO run from the SFT policy, only if it was promoted, else with ``--force`` (the
   override is recorded as such), measured on the suite, then the warehouse (training telemetry);
9. the summary: policies side by side, the promotion decisions and the leaderboard.

Heavy steps run as ``python -m vtforge …`` child processes so each has its own memory and its
own clear failure; ``--quick`` stops after step 5 with the synthetic stream only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from vtforge import constants as C
from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.config import Config


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        config: ConfigOption = None,
        tasks: int = typer.Option(40, help="Synthetic trace tasks to generate."),
        seed: int = typer.Option(0, help="Seed of the synthetic stream (same seed, same events)."),
        quick: bool = typer.Option(
            False,
            "--quick",
            help="Only the synthetic stream and the warehouse (no bank, self-play, training).",
        ),
        selfplay_tasks: int = typer.Option(6, help="Demo-bank tasks to run self-play on."),
        patches: int = typer.Option(8, help="BugFixer rollouts per task in the demo's self-play."),
        tests: int = typer.Option(8, help="TestWriter rollouts per task in the demo's self-play."),
        train_steps: int = typer.Option(4, help="Optimiser steps of each of the SFT and GRPO runs."),
        model_tasks: int = typer.Option(
            2, help="Demo-bank tasks the real model plays (0: skip it); 2 BugFixer + 2 TestWriter each."
        ),
    ) -> None:
        """Run the whole pipeline on this machine and print what landed where."""
        cfg = config_from(config)
        steps: list[tuple[str, Callable[[], None]]] = []
        if cfg.forge.events.sink == "kafka":
            steps.append(("local Kafka broker (unless bootstrap_servers is remote)", lambda: _broker(cfg)))
        if not quick:
            steps += [
                ("demo task bank from PyPI packages", lambda: _bank(cfg)),
                (
                    "self-play on the demo bank (replay engine)",
                    lambda: _child(
                        cfg,
                        "selfplay",
                        "--tasks",
                        "demo",
                        "--engine",
                        "replay",
                        "--limit",
                        str(selfplay_tasks),
                        "--patches",
                        str(patches),
                        "--tests",
                        str(tests),
                        "--rounds",
                        "2",
                    ),
                ),
            ]
            steps.append(("held-out suite: bugs of a package no demo task comes from", lambda: _heldout(cfg)))
            if model_tasks:
                steps.append(
                    (
                        f"self-play with the real model ({C.DEFAULT_MODEL} on llama.cpp)",
                        lambda: _real_model_selfplay(cfg, model_tasks),
                    )
                )
        steps.append(("synthetic trace stream", lambda: _synthetic(cfg, tasks, seed)))
        if cfg.forge.events.sink == "kafka":
            steps.append(("Kafka ingestion into the landing zone", lambda: _ingest(cfg)))
        steps.append(("warehouse: materialise every asset", lambda: _materialize(cfg)))
        if not quick:
            verdict: dict[str, bool] = {}
            steps.append(
                (
                    "SFT cold start on sft_examples (tiny model), measured on the held-out suite",
                    lambda: _child(cfg, "train", "sft", "--max-steps", str(train_steps), *_eval_suite(cfg)),
                )
            )
            steps += _warehouse_steps(cfg, "SFT telemetry")
            steps.append(
                ("promotion gates for the SFT policy (decision recorded)", lambda: _promote(cfg, verdict))
            )
            steps += _warehouse_steps(cfg, "the promotion decision")
            steps.append(
                (
                    "GRPO on rl_prompts, execution-outcome reward (tiny model), from the SFT policy",
                    lambda: _grpo(cfg, train_steps, promoted=verdict.get("promoted", False)),
                )
            )
            steps += _warehouse_steps(cfg, "training telemetry")
        started = time.perf_counter()
        for number, (title, step) in enumerate(steps, start=1):
            console.rule(f"[bold]{number}/{len(steps)} {title}")
            t0 = time.perf_counter()
            step()
            console.print(f"[dim]{title}: {time.perf_counter() - t0:.1f}s[/]")
        console.rule("[bold]summary")
        print_summary(cfg)
        if not quick:
            print_policies(cfg)
            print_promotions(cfg)
            print_leaderboard(cfg)
        console.print(f"demo finished in {time.perf_counter() - started:.0f}s; data under {cfg.data_dir}")
        console.print(
            'next: `vtforge ui` (asset graph), `vtforge sql "SELECT …"`, '
            f"report at {cfg.data_dir / 'report' / 'index.html'}"
        )


def _child(
    cfg: Config, *args: str, allow_exit: tuple[int, ...] = (0,), env: dict[str, str] | None = None
) -> int:
    """``python -m vtforge ARGS --config …`` in a child process, streaming its output."""
    command = [sys.executable, "-m", "vtforge", *args]
    if cfg.files:
        command += ["--config", str(cfg.files[-1])]
    result = subprocess.run(command, cwd=cfg.root, env={**os.environ, **env} if env else None)
    if result.returncode not in allow_exit:
        raise CliError(f"demo step failed: vtforge {' '.join(args)} exited {result.returncode}")
    return result.returncode


def _real_model_selfplay(cfg: Config, tasks: int) -> None:
    """The real policy on a few demo tasks, small k and short answers, so it takes minutes on 2 cores.

    SmolLM2-135M rarely writes a parseable SEARCH/REPLACE edit: its parse failures are data (rolled
    out, rewarded 0, kept with their raw text), and the summary shows its rates beside the replay's.
    """
    from vtforge.models import ModelError, gguf_path

    try:
        gguf_path(cfg, C.DEFAULT_MODEL)
    except ModelError as exc:
        console.print(f"  [yellow]skipped[/]: {exc}")
        return
    _child(
        cfg,
        *("selfplay", "--tasks", "demo", "--model", C.DEFAULT_MODEL, "--limit", str(tasks)),
        *("--patches", "2", "--tests", "2", "--max-new-tokens", "128", "--no-synthesis"),
        env={f"{C.ENV_PREFIX}SELFPLAY__MAX_RETRIES": "1"},
    )


def _bank(cfg: Config) -> None:
    from vtforge.tasks.demo import ensure_demo_bank
    from vtforge.tasks.manifest import write_manifest

    bank = ensure_demo_bank(cfg)
    packages = sorted({t.repo for t in bank})
    console.print(f"  {len(bank)} validated tasks from {len(packages)} packages: {', '.join(packages)}")
    written = write_manifest(cfg, "demo")
    console.print(f"  manifest: {written}")


def _broker(cfg: Config) -> None:
    from vtforge.kafka import ensure_local_broker

    ensure_local_broker(cfg)


def _synthetic(cfg: Config, tasks: int, seed: int) -> None:
    emit_synthetic(cfg, tasks, seed)


def _ingest(cfg: Config) -> None:
    from vtforge.ingest import Ingestor

    report = Ingestor(cfg, once=True).run()
    console.print(f"  ingested {report.events} events, quarantined {report.rejected}")


def _materialize(cfg: Config) -> None:
    from vtforge.cli.materialize import demo_step

    if not demo_step(cfg):
        raise CliError("demo step failed: the warehouse run or a blocking check failed")


def _heldout(cfg: Config) -> None:
    from vtforge.tasks.demo import ensure_heldout_slice

    tasks = ensure_heldout_slice(cfg, log=lambda line: console.print(f"  {line}", highlight=False))
    console.print(f"  {len(tasks)} held-out tasks ({tasks[0].repo}, split {tasks[0].split})")


def _eval_suite(cfg: Config) -> tuple[str, ...]:
    """``--eval-suite S`` when ``forge.eval.default_suite`` names a configured suite, else nothing."""
    suite = cfg.forge.eval.default_suite
    return ("--eval-suite", suite) if suite and suite in cfg.forge.eval.suites else ()


def _warehouse_steps(cfg: Config, what: str) -> list[tuple[str, Callable[[], None]]]:
    """(Kafka ingestion, then) a warehouse run, so the next step reads what the last one emitted."""
    steps: list[tuple[str, Callable[[], None]]] = []
    if cfg.forge.events.sink == "kafka":
        steps.append((f"Kafka ingestion of {what}", lambda: _ingest(cfg)))
    steps.append((f"warehouse: {what}", lambda: _materialize(cfg)))
    return steps


def _promote(cfg: Config, verdict: dict[str, bool]) -> None:
    """``vtforge gates --promote`` on the newest SFT policy: the decision and why, as an event."""
    from vtforge.trainers.runs import read_latest

    version = read_latest(cfg.data_dir).get("sft", {}).get("policy_version")
    if version is None:
        raise CliError("demo step failed: no SFT policy to promote")
    code = _child(cfg, "gates", "--policy-version", version, "--promote", allow_exit=(0, 1))
    verdict["promoted"] = code == 0
    if code:
        console.print("  [yellow]rejected[/]: a tiny random model is not expected to pass the gates")


def _grpo(cfg: Config, steps: int, *, promoted: bool) -> None:
    """GRPO from the SFT policy: as it is when promoted, else with ``--force`` (recorded as such)."""
    if not promoted:
        console.print(
            "  [yellow]--force[/]: the demo trains from the rejected SFT policy anyway; the override "
            "lands as a `forced` policy_promoted event (see policy_promotions)"
        )
    _child(
        cfg,
        *("train", "grpo", "--max-steps", str(steps), "--num-generations", "4"),
        *("--max-completion-tokens", "48", *(() if promoted else ("--force",))),
        *_eval_suite(cfg),
    )


def emit_synthetic(cfg: Config, tasks: int, seed: int) -> int:
    """The labelled synthetic stream, through the configured sink (acknowledged on close)."""
    from vtforge.fixtures.events import generate_events
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
    console.print(f"  {count} synthetic events acknowledged in {time.perf_counter() - started:.2f}s")
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
    if "reward_assigned" in types:
        rows = con.execute(
            f"SELECT coalesce(r.policy_version, '-'), r.envelope.synthetic, count(*), "
            f"round(avg(r.reward), 3), count(DISTINCT r.envelope.task_id) "
            f"FROM {scan('reward_assigned')} r WHERE r.subject_kind = 'patch' GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        summary = Table(title="patch outcomes (reward = execution outcome only)")
        for column in ("policy", "synthetic", "patches executed", "resolve rate", "tasks"):
            summary.add_column(column)
        for row in rows:
            summary.add_row(*(str(v) for v in row))
        console.print(summary)


POLICY_SQL = """
SELECT p.stage, p.policy_version, p.samples,
       1.0 - (p.parse_failures + p.empty) / nullif(p.samples, 0) AS parse_rate,
       p.acceptance AS apply_rate,
       p.resolve_rate,
       t.fail_before_fix_task_rate
FROM telemetry_patches p
LEFT JOIN telemetry_tests t
    ON t.stage IS NOT DISTINCT FROM p.stage AND t.policy_version IS NOT DISTINCT FROM p.policy_version
WHERE p.samples > 0
ORDER BY p.stage, p.version_index, p.policy_version
"""


def print_policies(cfg: Config) -> None:
    """Every policy side by side, as the warehouse measures it (docs/SELFPLAY.md › Recipe metrics)."""
    from vtforge.warehouse.reader import open_reader

    con = open_reader(cfg)
    try:
        rows = con.execute(POLICY_SQL).fetchall()
    finally:
        con.close()
    table = Table(title="policies side by side (BugFixer samples; fail-before-fix per sampled task)")
    for column in (
        "stage",
        "policy",
        "samples",
        "parse rate",
        "apply rate",
        "resolve rate",
        "fail-before-fix",
    ):
        table.add_column(column, justify="left" if column in ("stage", "policy") else "right")

    def rate(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    for stage, policy, samples, *rates in rows:
        table.add_row(str(stage), str(policy), str(samples), *(rate(v) for v in rates))
    console.print(table)


def warehouse_rows(cfg: Config, sql: str) -> list[tuple]:
    """Rows of ``sql`` on a snapshot of the warehouse; none while its table does not exist yet."""
    import duckdb

    from vtforge.warehouse.reader import open_reader

    con = open_reader(cfg)
    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException:
        return []
    finally:
        con.close()


def print_promotions(cfg: Config) -> None:
    """Every promotion decision the warehouse holds (``policy_promotions``), oldest first."""
    rows = warehouse_rows(
        cfg,
        "SELECT policy_version, decision, current, coalesce(forced_by, ''), reason "
        "FROM policy_promotions ORDER BY occurred_at",
    )
    table = Table(title="promotion decisions (policy_promotions)")
    for column in ("policy", "decision", "current", "forced by", "reason"):
        table.add_column(column)
    for version, decision, current, forced_by, reason in rows:
        table.add_row(version, decision, "yes" if current else "", forced_by, escape(reason))
    console.print(table)


def print_leaderboard(cfg: Config) -> None:
    """``leaderboard``: each policy's (or arm's) newest held-out evaluation, with a 95% interval."""
    rows = warehouse_rows(
        cfg,
        "SELECT suite, metric, entry, value, ci_low, ci_high, n FROM leaderboard "
        "ORDER BY suite, metric, entry",
    )
    table = Table(title="leaderboard (held-out skill evaluations; 95% Wilson interval)")
    for column in ("suite", "metric", "policy / arm", "value", "95% CI", "n"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left")
    for suite, metric, entry, value, low, high, n in rows:
        shown = "—" if value is None else f"{value:.3f}"
        interval = "" if low is None else f"[{low:.2f}, {high:.2f}]"
        table.add_row(suite, metric, entry, shown, interval, str(n))
    console.print(table)
