"""What every importer shares: the parsed batch, local repository lookup, and ``run_import``."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtforge import gitrepo
from vtforge.config import Config
from vtforge.tasks.bank import load_all, save_context, upsert
from vtforge.tasks.decontam import decontaminate
from vtforge.tasks.events import emit_registered
from vtforge.tasks.model import Task
from vtforge.transport.quarantine import Rejected, quarantine


@dataclass
class ImportOptions:
    slice_name: str
    split: str
    repos: Path | None = None  # local clones: <repos>/<owner>__<name> or <repos>/<name>
    validate: bool = True
    max_tasks: int | None = None
    log: Callable[[str], None] = lambda _m: None


@dataclass
class ParsedBatch:
    tasks: list[Task] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    context: list[dict[str, Any]] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)

    def reject(self, location: str, reason: str, error: str, raw: Any = None) -> None:
        if raw is not None and not isinstance(raw, bytes):
            raw = (raw if isinstance(raw, str) else json.dumps(raw, default=str)).encode()
        self.rejected.append(Rejected(location=location, reason=reason, error=error, raw=raw))
        self.notes[f"rejected:{reason}"] += 1


@dataclass
class ImportSummary:
    kind: str
    path: str
    slice_name: str
    parsed: int
    added: int
    updated: int
    unchanged: int
    rejected: int
    context: int
    events: int
    flagged: int
    quarantine_file: str | None
    notes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def input_sha256(path: Path) -> str:
    """Hash of an input file, or of every file under an input folder (sorted), for provenance."""
    digest = hashlib.sha256()
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    )
    for file in files:
        digest.update(str(file.relative_to(path.parent if path.is_file() else path)).encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def find_local_repo(repos: Path | None, repo: str, commit: str | None = None) -> Path | None:
    """A local clone of ``owner/name`` under ``repos`` holding ``commit`` (when given)."""
    if repos is None or not repos.is_dir():
        return None
    owner, _, name = repo.partition("/")
    names = [f"{owner}__{name}", name, repo.replace("/", "__")] if name else [owner]
    for candidate in (repos / n for n in dict.fromkeys(names) if n):
        is_repo = (candidate / ".git").exists() or (candidate / "HEAD").exists()
        if is_repo and (commit is None or gitrepo.has_commit(candidate, commit)):
            return candidate.resolve()
    return None


def iter_json_values(text: str) -> Iterator[Any]:
    """Every JSON value in ``text``: ``gh api --paginate`` prints one array per page, back to back."""
    decoder = json.JSONDecoder()
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return
        value, index = decoder.raw_decode(text, index)
        yield value


def read_gh_list(path: Path) -> list[Any]:
    """A ``gh api`` export: one array, several concatenated pages, or ``--slurp``'s array of pages."""
    items: list[Any] = []
    for value in iter_json_values(path.read_text(encoding="utf-8")):
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            for page in value:
                items.extend(page)
        elif isinstance(value, list):
            items.extend(value)
        else:
            items.append(value)
    return items


Parser = Callable[[Config, Path, ImportOptions], ParsedBatch]
IMPORTERS: dict[str, Parser] = {}


def importer(kind: str) -> Callable[[Parser], Parser]:
    def register(fn: Parser) -> Parser:
        IMPORTERS[kind] = fn
        return fn

    return register


def run_import(cfg: Config, kind: str, path: Path, options: ImportOptions) -> ImportSummary:
    """Parse ``path`` with the ``kind`` importer and store the result (idempotent)."""
    _load_parsers()
    if kind not in IMPORTERS:
        raise ValueError(f"unknown import kind {kind!r}; one of {', '.join(sorted(IMPORTERS))}")
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    batch = IMPORTERS[kind](cfg, path, options)
    others = [t for name, tasks in load_all(cfg).items() if name != options.slice_name for t in tasks]
    flagged_tasks, report = decontaminate(batch.tasks, [*others, *batch.tasks])
    result = upsert(cfg, options.slice_name, flagged_tasks)
    events = emit_registered(cfg, options.slice_name, result.changed) if result.changed else 0
    qfile = None
    if batch.rejected:
        name = f"{kind}-{options.slice_name}-{input_sha256(path)[:16]}"
        qfile = quarantine(cfg.quarantine_dir, f"tasks-{kind}", batch.rejected, name=name)
    if batch.context:
        save_context(cfg, options.slice_name, batch.context)
    return ImportSummary(
        kind=kind,
        path=str(path),
        slice_name=options.slice_name,
        parsed=len(batch.tasks),
        added=len(result.added),
        updated=len(result.updated),
        unchanged=result.unchanged,
        rejected=len(batch.rejected),
        context=len(batch.context),
        events=events,
        flagged=report.flagged,
        quarantine_file=str(qfile) if qfile else None,
        notes=dict(sorted(batch.notes.items())),
    )


def _load_parsers() -> None:
    from vtforge.tasks.importers import commitpack, github, swebench, swesmith  # noqa: F401
