"""The corpus pipeline's six stages, on datatrove's local executor or on a Ray cluster.

1. ``filter`` (``tasks``): read a task's records, render them (``render``), quality filters,
   decontamination; drop and count; write the task's documents; exact-dedup signatures.
2. ``exact`` (1 task): datatrove finds exact duplicates.
3. ``unique`` (``tasks``): drop exact duplicates (counted); write; MinHash signatures.
4. ``buckets`` (``minhash_buckets`` tasks) and 5. ``cluster`` (1 task): datatrove's MinHash LSH.
6. ``pack`` (``tasks``): drop near-duplicates (counted); tokenise, upsample and pack shards.

Every task reads and writes its own files (``work/<stage>/<task>.jsonl``), so the result depends on
the inputs and levers alone, whichever executor runs it and in whatever order its tasks finish:
``--executor ray`` gives the same bytes as ``local``. On Ray, the output folder must be a file
system every node sees (one machine, or a shared mount); ``RayPipelineExecutor`` needs the
cluster joined first (``ray.init(address=…)``), which ``run_stages`` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from vtforge.corpus import dedup
from vtforge.corpus.decontaminate import decont_filter
from vtforge.corpus.filters import DropRemoved, QualityFilter, tag
from vtforge.corpus.pack import PackShards
from vtforge.vtcode.render import PATCH_TOOL, RenderError, chatml, messages_for, patch_plain, verify


class ReadRank(PipelineStep):
    """This task's file ``<folder>/<task>.jsonl`` (absent or empty: no documents)."""

    name = "read task file"
    type = "vtforge"

    def __init__(self, folder: str, records: bool = False) -> None:
        super().__init__()
        self.folder, self.records = folder, records

    def run(
        self, data: Iterable[Document] | None = None, rank: int = 0, world_size: int = 1
    ) -> Iterator[Document]:
        path = Path(self.folder) / f"{rank:05d}.jsonl"
        if not path.is_file():
            return
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                value = json.loads(line)
                if self.records:
                    yield Document(text="", id=value["id"], metadata={"record": value})
                else:
                    yield Document(text=value["text"], id=value["id"], metadata=value["metadata"])


class WriteRank(PipelineStep):
    """Writes the documents to ``<folder>/<task>.jsonl`` (always, even empty) and passes them on."""

    name = "write task file"
    type = "vtforge"

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        with (Path(self.folder) / f"{rank:05d}.jsonl").open("w", encoding="utf-8") as fh:
            for doc in data:
                row = {"id": doc.id, "text": doc.text, "metadata": doc.metadata}
                fh.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
                yield doc


def plain_text(record: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """The transcript's words without JSON escapes: instruction, reasoning, edit and test texts."""
    parts = [str(record.get("instruction") or ""), str(record.get("reasoning") or "")]
    for message in messages:
        for call in message.get("tool_calls") or []:
            args = json.loads(call["function"]["arguments"])
            if call["function"]["name"] == PATCH_TOOL:
                args = {k: patch_plain(v) if isinstance(v, str) else v for k, v in args.items()}
            parts += [str(v) for k, v in sorted(args.items()) if isinstance(v, str) and k != "path"]
        if message["role"] == "tool":
            parts.append(str(message.get("content") or ""))
    return "\n".join(p for p in parts if p)


class RenderDocuments(PipelineStep):
    """Records → VT Code transcripts (the shared renderer); a record whose edits do not re-apply
    to its after-state is tagged ``render_mismatch``, one that changes nothing ``empty_change``."""

    name = "render"
    type = "vtforge"

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for doc in data:
            record = doc.metadata.pop("record")
            paths = sorted(
                {f["path"] for f in record.get("files") or []}
                | {str(b.get("path", "")) for b in record.get("blocks") or []}
                | set(record.get("binary") or [])
            )
            doc.metadata = {
                "source": record["source"],
                "synthetic": bool(record.get("synthetic")),
                "license": record.get("license"),
                "origin": record.get("origin"),
                "repo": record.get("repo"),
                "binary": list(record.get("binary") or []),
                "max_file_bytes": int(record.get("max_file_bytes") or 0),
                "paths": [p for p in paths if p],
            }
            if doc.metadata["binary"]:  # the quality filter removes it (binary_diff)
                doc.metadata["plain"] = ""
                yield doc
                continue
            try:
                messages = messages_for(record)
                doc.text = chatml(messages)
                verify(record, doc.text)
                doc.metadata["plain"] = plain_text(record, messages)
            except RenderError as exc:
                doc.text = doc.text or ""
                doc.metadata["plain"] = ""
                tag(doc, "empty_change" if "changes nothing" in str(exc) else "render_mismatch")
            yield doc


@dataclass(frozen=True)
class Plan:
    """Where a build's files go and the levers its steps take."""

    out: Path
    tasks: int
    tokenizer_file: Path
    levers: Any  # vtforge.config.CorpusConfig

    @property
    def work(self) -> str:
        return str(self.out / "work")

    @property
    def ledger(self) -> str:
        return str(self.out / "work" / "ledger")


def stages(plan: Plan) -> list[tuple[str, list[Any], int]]:
    """(name, steps, tasks) of each stage, in order."""
    c, work, tok = plan.levers, plan.work, str(plan.tokenizer_file)
    config = dedup.minhash_config(c.minhash_ngrams, c.minhash_buckets, c.minhash_hashes_per_bucket, c.seed)
    quality = QualityFilter(
        min_chars=c.min_chars,
        max_chars=c.max_chars,
        max_file_bytes=c.max_file_bytes,
        licenses=c.licenses,
        allow_unknown_license=c.allow_unknown_license,
    )
    pack = PackShards(
        out=str(plan.out),
        ledger=plan.ledger,
        tokenizer_file=tok,
        eos_token=c.eos_token,
        seq_len=c.seq_len,
        rows_per_shard=c.rows_per_shard,
        weights=dict(c.weights),
        seed=c.seed,
    )
    return [
        (
            "filter",
            [
                ReadRank(f"{work}/input", records=True),
                RenderDocuments(),
                quality,
                *decont_filter(Path(work) / "decontam", c.decontam_ngrams),
                DropRemoved(plan.ledger, "filter", tok),
                WriteRank(f"{work}/filtered"),
                *dedup.exact_signatures(work),
            ],
            plan.tasks,
        ),
        ("exact", dedup.find_exact(work), 1),
        (
            "unique",
            [
                ReadRank(f"{work}/filtered"),
                *dedup.exact_filter(work),
                DropRemoved(plan.ledger, "exact", tok),
                WriteRank(f"{work}/unique"),
                *dedup.minhash_signatures(work, config),
            ],
            plan.tasks,
        ),
        ("buckets", dedup.minhash_buckets(work, config), c.minhash_buckets),
        ("cluster", dedup.minhash_cluster(work, config), 1),
        (
            "pack",
            [
                ReadRank(f"{work}/unique"),
                *dedup.near_filter(work),
                DropRemoved(plan.ledger, "near", tok),
                pack,
            ],
            plan.tasks,
        ),
    ]


def run_stages(plan: Plan, *, executor: str = "local", address: str | None = None, workers: int = 0) -> None:
    """Run every stage, in order, on the local executor or the Ray cluster at ``address``."""
    logs = plan.out / "work" / "logs"
    if executor == "local":
        from datatrove.executor.local import LocalPipelineExecutor

        for name, steps, tasks in stages(plan):
            procs = workers or min(tasks, os.cpu_count() or 1)
            LocalPipelineExecutor(
                pipeline=steps,
                tasks=tasks,
                workers=min(procs, tasks),
                logging_dir=str(logs / name),
                skip_completed=False,
            ).run()
        return
    if executor != "ray":
        raise ValueError(f"unknown executor {executor!r} (local or ray)")
    import ray
    from datatrove.executor.ray import RayPipelineExecutor

    joined = not ray.is_initialized()
    if joined:
        ray.init(address=address or "auto", log_to_driver=False, ignore_reinit_error=True)
    try:
        for name, steps, tasks in stages(plan):
            RayPipelineExecutor(
                pipeline=steps,
                tasks=tasks,
                logging_dir=str(logs / name),
                skip_completed=False,
                cpus_per_task=1,
                mem_per_cpu_gb=0.25,
            ).run()
            _check_done(logs / name, tasks, name)
    finally:
        if joined:
            ray.shutdown()


def _check_done(folder: Path, tasks: int, stage: str) -> None:
    """Every task of a Ray stage completed (the executor only logs a failed task)."""
    done = folder / "completions"
    missing = [r for r in range(tasks) if not (done / f"{r:05d}").exists()]
    if missing:
        raise RuntimeError(f"corpus stage {stage}: tasks {missing} did not complete on the Ray cluster")


def clean_work(out: Path, keep: Sequence[str] = ()) -> None:
    import shutil

    for child in ("work", "shards"):
        if child not in keep and (out / child).exists():
            shutil.rmtree(out / child)
