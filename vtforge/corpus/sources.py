"""Sources → records: commit packs, GitHub exports, the task bank and the warehouse's curated rollouts.

A ``--sources`` entry is ``commit-pack:PATH`` (a local git repository: every non-merge commit),
``github:PATH`` (a ``gh api`` pack, parsed by the GitHub importer without the sandbox), ``bank`` or
``bank:SLICE`` (tasks already imported, train split only), ``warehouse`` (``sft_examples``: accepted
patches, generated tests and reasoning of curated rollouts, train split only) or ``demo`` (the demo
commit pack and GitHub pack of ``vtforge.corpus.demo``, plus the bank).

A record is plain JSON (``vtforge.vtcode.render`` documents its fields). Records are written to
``tasks`` input files, each record to the file its id hashes to and each file sorted by id, so the
documents every datatrove task sees depend only on the inputs, never on the order sources were
named in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtforge import gitrepo
from vtforge.config import Config
from vtforge.tasks.diffs import is_test_path
from vtforge.tasks.model import Task

SYNTHETIC_TASK_SOURCES = frozenset({"synth", "swe-smith"})
INPUT_DIR = "input"


class SourceError(ValueError):
    """A ``--sources`` entry that cannot be read; the message names it."""


@dataclass(frozen=True)
class Source:
    kind: str  # commit-pack | github | bank | warehouse
    arg: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


def parse_sources(specs: Sequence[str], cfg: Config) -> list[Source]:
    """``--sources`` entries as sources (``demo`` expanded, paths resolved)."""
    out: list[Source] = []
    for spec in specs:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            kind, _, arg = part.partition(":")
            if kind == "demo":
                from vtforge.corpus.demo import demo_sources

                out += [Source(k, str(p)) for k, p in demo_sources(cfg)] + [Source("bank")]
            elif kind in ("commit-pack", "github"):
                if not arg or not Path(arg).expanduser().exists():
                    raise SourceError(f"--sources {part}: {kind} needs an existing path ({kind}:PATH)")
                out.append(Source(kind, str(Path(arg).expanduser().resolve())))
            elif kind in ("bank", "warehouse"):
                out.append(Source(kind, arg or None))
            else:
                raise SourceError(
                    f"--sources {part}: unknown kind {kind!r} (commit-pack:PATH, github:PATH, bank[:SLICE], "
                    "warehouse, demo)"
                )
    return list(dict.fromkeys(out))


def collect(cfg: Config, sources: Sequence[Source]) -> Iterator[dict[str, Any]]:
    """Every record of every source."""
    for source in sources:
        if source.kind == "commit-pack":
            yield from commit_pack_records(Path(str(source.arg)))
        elif source.kind == "github":
            yield from github_records(cfg, Path(str(source.arg)))
        elif source.kind == "bank":
            yield from bank_records(cfg, source.arg)
        elif source.kind == "warehouse":
            yield from warehouse_records(cfg)


def write_inputs(records: Iterator[dict[str, Any]], folder: Path, tasks: int) -> dict[str, int]:
    """Records into ``folder/{rank:05d}.jsonl`` (every file written, empty or not); returns
    records per source. A record id seen twice (a source named twice) is kept once."""
    buckets: list[dict[str, dict[str, Any]]] = [{} for _ in range(tasks)]
    counts: dict[str, int] = {}
    for record in records:
        rank = int(hashlib.sha256(record["id"].encode()).hexdigest()[:8], 16) % tasks
        if record["id"] not in buckets[rank]:
            buckets[rank][record["id"]] = record
            counts[record["source"]] = counts.get(record["source"], 0) + 1
    folder.mkdir(parents=True, exist_ok=True)
    for rank, bucket in enumerate(buckets):
        with (folder / f"{rank:05d}.jsonl").open("w", encoding="utf-8") as fh:
            for key in sorted(bucket):
                fh.write(json.dumps(bucket[key], sort_keys=True, ensure_ascii=False) + "\n")
    return dict(sorted(counts.items()))


# --- commit packs ---------------------------------------------------------------------------------


def _text(data: bytes) -> str | None:
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def commit_pack_records(repo: Path) -> Iterator[dict[str, Any]]:
    """One record per non-merge commit with a parent: its message and its files before and after."""
    from vtforge.tasks.importers.commitpack import candidate_commits, guess_license

    if not gitrepo.has_commit(repo, "HEAD"):
        raise SourceError(f"commit-pack:{repo} is not a git repository with commits")
    try:
        remote = gitrepo.git(repo, "config", "--get", "remote.origin.url").strip()
    except gitrepo.GitError:
        remote = ""
    licenses: dict[str, str | None] = {}
    for commit in candidate_commits(repo):
        parents = gitrepo.git(repo, "rev-list", "--parents", "-n", "1", commit).split()[1:]
        if len(parents) != 1:
            continue
        parent = parents[0]
        status = gitrepo.git(repo, "diff", "--no-renames", "--name-status", "-z", parent, commit).split("\0")
        changes = [(status[i], status[i + 1]) for i in range(0, len(status) - 1, 2)]
        files, binary, largest = [], [], 0
        for kind, path in changes:
            before = gitrepo.show(repo, parent, path) if kind != "A" else None
            after = gitrepo.show(repo, commit, path) if kind != "D" else None
            largest = max(largest, len(before or b""), len(after or b""))
            before_text = _text(before) if before is not None else None
            after_text = _text(after) if after is not None else None
            if (before is not None and before_text is None) or (after is not None and after_text is None):
                binary.append(path)
                continue
            files.append({"path": path, "before": before_text, "after": after_text})
        subject, _, body = gitrepo.git(repo, "log", "-1", "--format=%B", commit).strip().partition("\n")
        tree = gitrepo.git(repo, "rev-parse", f"{commit}^{{tree}}").strip()
        if tree not in licenses:
            licenses[tree] = guess_license(repo, commit)
        yield {
            "id": f"commit-pack:{repo.name}@{commit}",
            "source": "commit-pack",
            "synthetic": False,
            "repo": f"local/{repo.name}",
            "origin": f"{remote or repo}@{commit}",
            "license": licenses[tree],
            "instruction": subject.strip(),
            "reasoning": body.strip() or None,
            "files": files,
            "binary": binary,
            "max_file_bytes": largest,
            "test_paths": sorted(f["path"] for f in files if is_test_path(f["path"])),
            "tests": None,
        }


# --- GitHub packs and the bank ----------------------------------------------------------------------


def task_record(task: Task, source: str, reasoning: str | None = None) -> dict[str, Any]:
    """A task (any importer) as a record: statement, hints as reasoning, patch and test patch as one
    ``apply_patch``, and a test run with its outcome when FAIL_TO_PASS was measured."""
    f2p = list(task.fail_to_pass)
    tests = None
    if f2p:
        tests = {
            "command": "python -m pytest -q " + " ".join(f2p),
            "outcome": f"{len(f2p)} passed (FAIL_TO_PASS: {', '.join(f2p)})",
            "exit_code": 0,
        }
    prov = task.provenance or {}
    diff = task.patch + (task.test_patch or "")
    binary = [
        line.split(" and ")[-1].split()[0] for line in diff.splitlines() if line.startswith("Binary files")
    ]
    return {
        "id": f"{source}:{task.instance_id}",
        "source": source,
        "synthetic": task.source in SYNTHETIC_TASK_SOURCES,
        "repo": task.repo,
        "origin": str(prov.get("origin") or task.repo),
        "license": prov.get("license"),
        "instruction": task.problem_statement,
        "reasoning": (reasoning if reasoning is not None else task.hints_text) or None,
        "diff": diff,
        "binary": binary,
        "max_file_bytes": 0,
        "tests": tests,
    }


def github_records(cfg: Config, path: Path) -> Iterator[dict[str, Any]]:
    """Tasks of a GitHub pack through the GitHub importer's parser (no sandbox: F2P stays as
    measured, usually empty); the PR's review comments join the issue hints as reasoning."""
    from vtforge.tasks.importers.common import ImportOptions
    from vtforge.tasks.importers.github import parse

    batch = parse(cfg, path, ImportOptions(slice_name="corpus", split="train", validate=False))
    reviews: dict[str, list[str]] = {}
    for context in batch.context:
        if context.get("instance_id"):
            bodies = [str(c.get("body") or "").strip() for c in context.get("review_comments") or []]
            reviews[context["instance_id"]] = [b for b in bodies if b]
    for task in batch.tasks:
        reasoning = "\n\n".join(
            [t for t in [task.hints_text.strip(), *reviews.get(task.instance_id, [])] if t]
        )
        yield task_record(task, "github", reasoning)


def bank_records(cfg: Config, slice_name: str | None) -> Iterator[dict[str, Any]]:
    """Train-split, trainable tasks of the bank (one slice, or every slice)."""
    from vtforge.tasks.bank import load_all, load_slice

    slices = {slice_name: load_slice(cfg, slice_name)} if slice_name else load_all(cfg)
    for _, tasks in sorted(slices.items()):
        for task in tasks:
            if task.split == "train" and task.trainable:
                yield task_record(task, "bank")


# --- the warehouse's curated rollouts --------------------------------------------------------------


def warehouse_records(cfg: Config) -> Iterator[dict[str, Any]]:
    """``sft_examples`` of the train split (each rollout once: upsampling is the corpus's own lever),
    with the task's repository, licence and FAIL_TO_PASS, rendered through the shared renderer."""
    import duckdb

    from vtforge.warehouse.connection import snapshot
    from vtforge.warehouse.sft_vtcode import rollout_record

    if not Path(cfg.duckdb_path).is_file():
        raise SourceError(f"warehouse: {cfg.duckdb_path} does not exist (run `vtforge materialize` first)")
    snap = snapshot(Path(cfg.duckdb_path))
    if snap is None:
        raise SourceError(f"warehouse: {cfg.duckdb_path} does not exist (run `vtforge materialize` first)")
    con = duckdb.connect(str(snap), read_only=True)
    try:
        cursor = con.execute(
            """SELECT e.example_id, e.rollout_id, e.role, e.messages, e.synthetic, t.repo, t.license,
                      t.fail_to_pass
               FROM sft_examples e LEFT JOIN tasks t USING (task_id)
               WHERE e.split = 'train' AND e.upsample_index = 0 ORDER BY e.example_id"""
        )
        columns = [d[0] for d in cursor.description]
        for row in cursor.fetchall():
            record = rollout_record(dict(zip(columns, row, strict=True)))
            if record is not None:
                yield record
    finally:
        con.close()
