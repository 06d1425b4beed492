"""``vtforge tasks``: import, synthesise, decontaminate, list and document the task bank."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.tasks.model import SPLITS

if TYPE_CHECKING:
    from vtforge.config import Config

KINDS = ("swe-bench", "swe-smith", "github", "commit-pack")
DEFAULT_SPLIT = {"swe-bench": "eval", "swe-smith": "train", "github": "train", "commit-pack": "train"}


def register(app: typer.Typer) -> None:
    tasks_app = typer.Typer(
        help="The task bank: import, synthesise, decontaminate, manifests.", no_args_is_help=True
    )
    app.add_typer(tasks_app, name="tasks")

    @tasks_app.command("import")
    def import_(
        kind: Annotated[str, typer.Argument(help="swe-bench | swe-smith | github | commit-pack")],
        path: Annotated[Path, typer.Argument(help="JSONL/JSON/Parquet file, GitHub pack, or git repo")],
        slice_name: str = typer.Option(None, "--slice", help="Slice to import into (default: the kind)."),
        split: str = typer.Option(None, help="train | eval (default: eval for swe-bench, else train)."),
        repos: Annotated[
            Path | None, typer.Option(help="Folder of local clones (<owner>__<name>) to run tasks from.")
        ] = None,
        validate: bool = typer.Option(True, help="Measure F2P/P2P in the sandbox when a repo is at hand."),
        max_tasks: int = typer.Option(None, "--max", help="Stop after this many tasks (commit packs)."),
        config: ConfigOption = None,
    ) -> None:
        """Import tasks; re-importing the same input changes nothing. Bad records go to quarantine."""
        from vtforge.tasks.importers.common import ImportOptions, run_import

        if kind not in KINDS:
            raise CliError(f"KIND must be one of {', '.join(KINDS)}, got {kind!r}", code=2)
        split = split or DEFAULT_SPLIT[kind]
        if split not in SPLITS:
            raise CliError(f"--split must be train or eval, got {split!r}", code=2)
        cfg = config_from(config)
        if not path.exists():
            raise CliError(f"{path}: no such file or folder")
        options = ImportOptions(
            slice_name=slice_name or kind,
            split=split,
            repos=repos,
            validate=validate,
            max_tasks=max_tasks,
            log=console.print,
        )
        try:
            summary = run_import(cfg, kind, path, options)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        console.print(json.dumps(summary.to_dict(), indent=2))

    @tasks_app.command("synth")
    def synth(
        package: str = typer.Option(..., help="NAME==VERSION of a PyPI package whose sdist ships tests."),
        max_tasks: int = typer.Option(10, "--max", min=1, help="Keep at most this many bugs."),
        seed: int = typer.Option(0, help="Same seed, same tasks."),
        max_tries: int = typer.Option(None, help="Candidates to try at most (default 4 x --max, >= 20)."),
        slice_name: str = typer.Option("synth", "--slice", help="Slice to add the tasks to."),
        config: ConfigOption = None,
    ) -> None:
        """Synthesise validated bugs from a real package (SWE-smith style, offline after download)."""
        from vtforge.tasks.bank import load_all, upsert
        from vtforge.tasks.decontam import decontaminate
        from vtforge.tasks.events import emit_registered
        from vtforge.tasks.synth.pipeline import synthesize
        from vtforge.tasks.synth.sdist import SdistError, parse_requirement

        cfg = config_from(config)
        try:
            name, version = parse_requirement(package)
            report = synthesize(
                cfg,
                name,
                version,
                max_tasks=max_tasks,
                seed=seed,
                max_tries=max_tries,
                slice_name=slice_name,
                log=console.print,
            )
        except (ValueError, SdistError, RuntimeError) as exc:
            raise CliError(str(exc)) from None
        universe = [t for tasks in load_all(cfg).values() for t in tasks]
        flagged, _ = decontaminate(report.tasks, universe)
        result = upsert(cfg, slice_name, flagged)
        events = emit_registered(cfg, slice_name, result.changed) if result.changed else 0
        console.print(
            json.dumps(
                {
                    **report.summary(),
                    "slice": slice_name,
                    "added": len(result.added),
                    "updated": len(result.updated),
                    "unchanged": result.unchanged,
                    "events": events,
                },
                indent=2,
            )
        )

    @tasks_app.command("demo")
    def demo(
        min_tasks: int = typer.Option(30, help="At least this many tasks."),
        config: ConfigOption = None,
    ) -> None:
        """Build (once; cached) the demo bank from small real PyPI packages."""
        from vtforge.tasks.demo import ensure_demo_bank

        cfg = config_from(config)
        try:
            tasks = ensure_demo_bank(cfg, min_tasks=min_tasks, log=console.print)
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
        console.print(f"demo bank: {len(tasks)} tasks from {len({t.repo for t in tasks})} packages")

    @tasks_app.command("decontaminate")
    def decontaminate_cmd(config: ConfigOption = None) -> None:
        """Recompute eval-contamination flags of every slice against every eval-split task."""
        from vtforge.tasks.bank import load_all, save_slice
        from vtforge.tasks.decontam import decontaminate

        cfg = config_from(config)
        slices = load_all(cfg)
        universe = [t for tasks in slices.values() for t in tasks]
        for name, tasks in slices.items():
            flagged, report = decontaminate(tasks, universe)
            if [t.contamination_flags for t in flagged] != [t.contamination_flags for t in tasks]:
                save_slice(cfg, name, flagged)
            console.print(f"{name}: {json.dumps(report.to_dict())}")

    @tasks_app.command("manifest")
    def manifest(
        slice_name: str = typer.Option(None, "--slice", help="One slice (default: every slice)."),
        out: Annotated[
            Path | None, typer.Option(help="Folder (default: docs/research/datasets in the workspace).")
        ] = None,
        config: ConfigOption = None,
    ) -> None:
        """Write docs/research/datasets/<slice>.md and .json (same hashes on every run)."""
        from vtforge.tasks.bank import list_slices
        from vtforge.tasks.manifest import write_manifest

        cfg = config_from(config)
        names = [slice_name] if slice_name else list_slices(cfg)
        if not names:
            raise CliError(f"no task slices under {cfg.data_dir / 'tasks'}")
        for name in names:
            try:
                json_path, md_path = write_manifest(cfg, name, out)
            except ValueError as exc:
                raise CliError(str(exc)) from None
            sha = json.loads(json_path.read_text())["slice_sha256"]
            console.print(f"{name}: {json_path} {md_path} slice_sha256={sha}")

    @tasks_app.command("baseline")
    def baseline(
        policy: str = typer.Option(
            ..., "--policy", help="Policy version measured (recorded on every event), e.g. the SFT policy."
        ),
        samples: int = typer.Option(8, "--samples", min=1, help="BugFixer samples per task."),
        tasks: str = typer.Option(
            None, "--tasks", help="Task-bank slice or a JSONL file of tasks (default: every slice)."
        ),
        split: str = typer.Option("train", "--split", help="train | eval | all."),
        engine: str = typer.Option(
            None, "--engine", help="openai | vllm | transformers | replay (else forge.selfplay.engine)."
        ),
        replay: str = typer.Option(
            None, "--replay", help="replay: recorded completions (JSONL), or 'warehouse' (the policy's own)."
        ),
        make_replay: bool = typer.Option(
            True,
            "--make-replay/--no-make-replay",
            help="replay: if the file is missing, first write labelled SYNTHETIC completions for the tasks.",
        ),
        limit: int = typer.Option(None, "--limit", min=1, help="Only the first N tasks."),
        run_id: str = typer.Option(None, "--run-id", help="Run id (default: time-based)."),
        config: ConfigOption = None,
    ) -> None:
        """Measure a policy's baseline success per task in the sandbox and emit it (stage 'eval').

        After `vtforge materialize`, rl_prompts buckets each task by the resolved share of these
        samples (easy >= forge.curriculum.easy_min_success, medium > medium_min_success, else hard).
        """
        import uuid
        from datetime import UTC, datetime

        from vtforge.sandbox.api import SandboxUnavailable, open_sandbox
        from vtforge.selfplay.baseline import run_baseline
        from vtforge.selfplay.task import as_selfplay_task
        from vtforge.transport import sink_from_config

        cfg = config_from(config)
        engine = engine or cfg.forge.selfplay.engine
        if split not in (*SPLITS, "all"):
            raise CliError(f"--split must be train, eval or all, got {split!r}", code=2)
        if engine not in ("openai", "vllm", "transformers", "replay"):
            raise CliError(
                f"--engine must be one of openai, vllm, transformers, replay, got {engine!r}", code=2
            )
        records = _baseline_records(cfg, tasks)
        chosen, skipped = [], []
        for record in records:
            record_split = getattr(record, "split", None) or (
                record.get("split") if isinstance(record, dict) else None
            )
            if split != "all" and (record_split or "train") != split:
                continue
            try:
                chosen.append(as_selfplay_task(record))
            except ValueError:
                skipped.append(str(getattr(record, "instance_id", None) or record.get("instance_id")))
        chosen = chosen[: limit or None]
        if not chosen:
            raise CliError(
                f"--tasks {tasks or '(every slice)'}: no {split} task with a repo_dir to run "
                f"({len(skipped)} without one)"
            )
        model = _baseline_engine(cfg, engine, policy, replay, tasks or "bank", chosen, make_replay, samples)
        base_id = run_id or f"baseline-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        try:
            box = open_sandbox(cfg)
        except SandboxUnavailable as exc:
            raise CliError(f"forge.sandbox.backend = {cfg.forge.sandbox.backend}: {exc}") from None
        with box, model, sink_from_config(cfg, producer="vtforge.selfplay.baseline") as sink:

            def emit(events: list[dict]) -> None:
                sink.emit_many(events)
                sink.flush()

            summary = run_baseline(
                cfg,
                chosen,
                model,
                box,
                emit,
                samples=samples,
                policy_version=policy,
                run_id=base_id,
                progress=lambda task_id: console.print(f"[dim]measuring {task_id}[/]"),
            )
        cur = cfg.forge.curriculum
        buckets = summary.buckets(cur.easy_min_success, cur.medium_min_success)
        table = Table(title=f"baseline of {policy} ({base_id}, {samples} samples per task)")
        for column in ("task", "judged", "resolved", "rate", "bucket", "note"):
            table.add_column(column)
        for t in summary.tasks:
            rate = f"{t.rate:.2f}" if t.rate is not None else ""
            table.add_row(
                t.task_id, str(t.judged), str(t.resolved), rate, buckets[t.task_id], (t.error or "")[:60]
            )
        console.print(table)
        if skipped:
            console.print(f"[yellow]{len(skipped)} tasks without a repo_dir were not measured[/]")
        console.print(
            f"{summary.events} events emitted; `vtforge materialize` buckets the tasks in rl_prompts"
        )

    @tasks_app.command("list")
    def list_(
        slice_name: str = typer.Option(None, "--slice", help="List this slice's tasks."),
        config: ConfigOption = None,
    ) -> None:
        """Slices with their counts, or one slice's tasks."""
        from vtforge.tasks.bank import list_slices, load_slice

        cfg = config_from(config)
        if slice_name is None:
            table = Table(title=f"task slices: {cfg.data_dir / 'tasks'}")
            for column in ("slice", "tasks", "train", "eval", "flagged", "sources"):
                table.add_column(column)
            for name in list_slices(cfg):
                tasks = load_slice(cfg, name)
                table.add_row(
                    name,
                    str(len(tasks)),
                    str(sum(t.split == "train" for t in tasks)),
                    str(sum(t.split == "eval" for t in tasks)),
                    str(sum(bool(t.contamination_flags) for t in tasks)),
                    ", ".join(sorted({t.source for t in tasks})),
                )
            console.print(table)
            return
        tasks = load_slice(cfg, slice_name)
        if not tasks:
            raise CliError(f"slice {slice_name!r} is empty or does not exist")
        table = Table(title=f"slice {slice_name}")
        for column in ("instance_id", "repo", "split", "F2P", "P2P", "flags"):
            table.add_column(column)
        for t in tasks:
            table.add_row(
                t.instance_id,
                t.repo,
                t.split,
                str(len(t.fail_to_pass)),
                str(len(t.pass_to_pass)),
                ",".join(t.contamination_flags),
            )
        console.print(table)


def _baseline_records(cfg: Config, tasks: str | None) -> list[Any]:
    """The tasks to measure: a slice or JSONL file (as ``vtforge selfplay --tasks``), else every slice."""
    from vtforge.cli.selfplay import load_tasks

    if tasks:
        return load_tasks(cfg, tasks)
    from vtforge.tasks.bank import load_all

    return [t for slice_tasks in load_all(cfg).values() for t in slice_tasks]


def _baseline_engine(
    cfg: Config,
    engine: str,
    policy: str,
    replay: str | None,
    tasks_name: str,
    chosen: list[Any],
    make_replay: bool,
    samples: int,
) -> Any:
    """The engine that plays ``policy``: its recorded completions (replay), else its model.

    For transformers/vllm without ``forge.selfplay.engine_model``, the policy's own trainer output
    (``<data_dir>/trainers/<policy>/final``) is used when it exists.
    """
    from vtforge.selfplay.engines import make_engine

    if engine == "replay":
        if replay == "warehouse":
            from vtforge.selfplay.engines.replay_engine import ReplayEngine

            return ReplayEngine.from_warehouse(cfg.duckdb_path, policy_version=policy)
        replay_file = replay or cfg.forge.selfplay.replay_file
        if replay_file is None:
            from vtforge.cli.selfplay import default_replay_file

            own = default_replay_file(cfg, tasks_name)
            target = own.with_name(f"baseline-{own.name}")  # never self-play's own file
            if not target.exists():
                if not make_replay:
                    raise CliError(f"replay file not found: {target} (pass --replay FILE)")
                from vtforge.fixtures.completions import make_records, write_records

                count = write_records(target, make_records(chosen, patches=max(40, samples), tests=1))
                console.print(f"wrote {count} [bold]synthetic[/] recorded completions to {target}")
            replay_file = str(target)
        try:
            return make_engine(cfg, "replay", replay_file=replay_file)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    own = cfg.data_dir / "trainers" / policy / "final"
    if engine in ("transformers", "vllm") and not cfg.forge.selfplay.engine_model and own.is_dir():
        from vtforge.selfplay.engines.local_engines import TransformersEngine, VLLMEngine

        return TransformersEngine(str(own)) if engine == "transformers" else VLLMEngine(str(own))
    try:
        return make_engine(cfg, engine)
    except ValueError as exc:
        raise CliError(str(exc)) from None
