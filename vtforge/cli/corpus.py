"""``vtforge corpus build|check``: the Stage 1 mid-training corpus (docs/CORPUS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vtforge.cli._common import CliError, ConfigOption, config_from, console

DOCS_DATASETS = Path("docs") / "research" / "datasets"


def register(app: typer.Typer) -> None:
    corpus_app = typer.Typer(help="Stage 1 mid-training corpus in VT Code's tool format (datatrove).")
    app.add_typer(corpus_app, name="corpus")

    @corpus_app.command("build")
    def build(
        sources: list[str] = typer.Option(  # noqa: B008
            ...,
            "--sources",
            "-s",
            help="commit-pack:PATH, github:PATH, bank[:SLICE], warehouse or demo (repeat or comma-separate).",
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Corpus folder (shards/, manifest.json)."),  # noqa: B008
        executor: str = typer.Option("local", "--executor", help="local or ray."),
        address: str | None = typer.Option(None, "--address", help="Ray head address (ray executor)."),
        name: str | None = typer.Option(None, "--name", help="Manifest name (default: the folder's name)."),
        eval_file: list[Path] = typer.Option(  # noqa: B008
            [], "--eval", help="Extra SWE-bench JSON lines to decontaminate against."
        ),
        docs: Path | None = typer.Option(  # noqa: B008
            None, "--docs", help=f"Also write corpus-<name>.json/.md here (e.g. {DOCS_DATASETS})."
        ),
        no_events: bool = typer.Option(False, "--no-events", help="Emit no corpus_shard_written events."),
        config: ConfigOption = None,
    ) -> None:
        """Render, filter, deduplicate, decontaminate, tokenise and pack the sources into shards."""
        from vtforge.corpus.build import BuildOptions, build_corpus
        from vtforge.corpus.pack import TokenizerError
        from vtforge.corpus.sources import SourceError

        cfg = config_from(config)
        if executor not in ("local", "ray"):
            raise CliError(f"--executor {executor}: local or ray", code=2)
        options = BuildOptions(
            sources=sources,
            out=out,
            executor=executor,
            address=address,
            name=name,
            eval_files=eval_file,
            docs_dir=docs,
            emit_events=not no_events,
            log=lambda m: console.print(m, highlight=False),
        )
        try:
            manifest = build_corpus(cfg, options)
        except (SourceError, TokenizerError) as exc:
            raise CliError(str(exc)) from None
        totals = manifest["totals"]
        console.print(
            f"corpus {manifest['content_sha256'][:16]}: {totals['shards']} shards, {totals['rows']} rows, "
            f"{totals['tokens']} tokens from {totals['documents_collected']} documents; "
            f"removed {json.dumps(manifest['removed_by_reason'])}; events {manifest.get('events', 0)}; "
            f"{manifest['seconds']} s",
            highlight=False,
        )
        console.print(f"manifest: {out / 'manifest.json'}", highlight=False)

    @corpus_app.command("check")
    def check(
        out: Path = typer.Argument(..., help="Corpus folder."),  # noqa: B008
        config: ConfigOption = None,
    ) -> None:
        """Compare the manifest with the shards on disk (hashes, rows, tokens); exit 1 on a mismatch."""
        from vtforge.corpus.manifest import check_shards

        config_from(config)
        result = check_shards(out)
        for problem in result.problems:
            console.print(f"  {problem}", highlight=False)
        if not result.passed:
            raise CliError(f"{out}: {len(result.problems)} problem(s) between the manifest and the shards")
        console.print(
            f"ok: {result.metadata['shards']} shards, {result.metadata['tokens']} tokens", highlight=False
        )
