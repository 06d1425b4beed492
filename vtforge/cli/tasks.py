"""``vtforge tasks``: import, synthesise, decontaminate, list and document the task bank."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.tasks.model import SPLITS

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
