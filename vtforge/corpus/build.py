"""``vtforge corpus build``: sources → records → the six datatrove stages → manifest → events."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtforge.config import Config
from vtforge.corpus import decontaminate, sources
from vtforge.corpus.executors import Plan, clean_work, run_stages
from vtforge.corpus.manifest import build_manifest, render_markdown, write_manifest
from vtforge.corpus.pack import tokenizer_file
from vtforge.warehouse.export_manifest import file_sha256

PRODUCER = "vtforge.corpus"


@dataclass(frozen=True)
class BuildOptions:
    sources: Sequence[str]
    out: Path
    executor: str = "local"  # local | ray
    address: str | None = None  # ray: the head's address (else RAY_ADDRESS / "auto")
    name: str | None = None  # the manifest's name (docs/research/datasets/corpus-<name>.json)
    eval_files: Sequence[Path] = ()
    docs_dir: Path | None = None  # where the manifest copy goes; None: no copy
    emit_events: bool = True
    log: Callable[[str], None] = lambda _m: None


def _input_hash(source: sources.Source) -> str | None:
    if source.arg and Path(source.arg).exists():
        from vtforge.tasks.importers.common import input_sha256

        return input_sha256(Path(source.arg))
    return None


def _shown(path: Path, root: Path) -> str:
    """A path relative to the workspace when inside it (manifests read the same on every machine)."""
    try:
        return str(path.resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def build_corpus(cfg: Config, options: BuildOptions) -> dict[str, Any]:
    """Build the corpus into ``options.out``; returns the manifest."""
    started = time.perf_counter()
    levers = cfg.forge.corpus
    out = options.out.resolve()
    clean_work(out)
    parsed = sources.parse_sources(options.sources, cfg)
    tok = tokenizer_file(cfg)
    options.log(f"tokenizer: {tok}")
    work = out / "work"
    collected = sources.write_inputs(sources.collect(cfg, parsed), work / "input", levers.tasks)
    options.log(f"collected: {collected}")
    references = decontaminate.eval_references(cfg, options.eval_files)
    decontam = decontaminate.build_index(references, work / "decontam", levers.decontam_ngrams)
    plan = Plan(out=out, tasks=levers.tasks, tokenizer_file=tok, levers=levers)
    run_stages(plan, executor=options.executor, address=options.address, workers=levers.workers)
    name = options.name or out.name
    command = " ".join(
        [
            "vtforge corpus build",
            *[f"--sources {shlex.quote(s)}" for s in options.sources],
            "--out",
            _shown(out, cfg.root),
            *([f"--name {shlex.quote(options.name)}"] if options.name else []),
        ]
    )
    header = {
        "name": name,
        "command": command,
        "executor": options.executor,
        "seed": levers.seed,
        "tokenizer": {"lever": levers.tokenizer, "sha256": file_sha256(tok)},
        "levers": levers.model_dump(),
        "inputs": [
            {
                "kind": s.kind,
                "arg": _shown(Path(s.arg), cfg.root) if s.arg else None,
                "sha256": _input_hash(s),
            }
            for s in parsed
        ],
    }
    manifest = build_manifest(out, header=header, collected=collected, decontam=decontam)
    write_manifest(out, manifest)
    if options.docs_dir is not None:
        options.docs_dir.mkdir(parents=True, exist_ok=True)
        write_manifest_copy(options.docs_dir, name, manifest)
    if options.emit_events:
        manifest["events"] = emit_shard_events(cfg, manifest)
    manifest["seconds"] = round(time.perf_counter() - started, 2)
    return manifest


def write_manifest_copy(folder: Path, name: str, manifest: dict[str, Any]) -> None:
    import json

    (folder / f"corpus-{name}.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (folder / f"corpus-{name}.md").write_text(render_markdown(manifest))


def shard_event(manifest: dict[str, Any], shard: dict[str, Any]) -> dict[str, Any]:
    from vtforge.schemas import new_event

    return new_event(
        "corpus_shard_written",
        {
            "corpus_id": manifest["content_sha256"],
            "shard": shard["shard"],
            "shard_sha256": shard["sha256"],
            "rows": shard["rows"],
            "seq_len": manifest["levers"]["seq_len"],
            "tokens": shard["tokens"],
            "source_tokens": shard["source_tokens"],
            "documents": shard["documents"],
            "tokenizer": manifest["tokenizer"]["lever"],
            "seed": manifest["seed"],
            "executor": manifest["executor"],
        },
        producer=PRODUCER,
        stage="agentless",
        key=f"{manifest['content_sha256']}:{shard['shard']}",
        run_id=manifest["content_sha256"][:16],
    )


def emit_shard_events(cfg: Config, manifest: dict[str, Any]) -> int:
    """One ``corpus_shard_written`` per shard through the configured sink (a rebuild with the same
    content emits the same event ids)."""
    from vtforge.transport import sink_from_config

    with sink_from_config(cfg, producer=PRODUCER) as sink:
        for shard in manifest["shards"]:
            sink.emit(shard_event(manifest, shard))
    return len(manifest["shards"])
