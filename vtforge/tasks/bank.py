"""Bank storage: one SWE-bench JSONL file per slice under ``<data_dir>/tasks/``.

A slice file is sorted by ``instance_id`` and written atomically, so the same tasks always give
the same bytes (manifests hash them). ``upsert`` is what importers use: a task already present
with the same content is left alone, so re-importing changes nothing and emits nothing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vtforge.config import Config
from vtforge.tasks.model import Task

TASKS_DIR = "tasks"
REPOS_DIR = "repos"
CONTEXT_DIR = "context"
_SLICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def tasks_dir(cfg: Config) -> Path:
    return cfg.data_dir / TASKS_DIR


def repos_dir(cfg: Config) -> Path:
    """Where task repositories live: ``<data_dir>/repos/<name>-<version>/``."""
    return cfg.data_dir / REPOS_DIR


def slice_path(cfg: Config, slice_name: str) -> Path:
    if not _SLICE_NAME.match(slice_name):
        raise ValueError(f"slice name {slice_name!r} must be letters, digits, '.', '_' or '-'")
    return tasks_dir(cfg) / f"{slice_name}.jsonl"


def dump_tasks(tasks: Iterable[Task]) -> str:
    """The canonical JSONL text of a slice (sorted, stable key order)."""
    ordered = sorted(tasks, key=lambda t: t.instance_id)
    return "".join(json.dumps(t.to_swebench(), sort_keys=True, ensure_ascii=False) + "\n" for t in ordered)


def save_slice(cfg: Config, slice_name: str, tasks: Iterable[Task]) -> Path:
    """Replace the slice with ``tasks`` (atomically). Duplicate instance ids are an error."""
    tasks = list(tasks)
    seen: set[str] = set()
    for task in tasks:
        if task.instance_id in seen:
            raise ValueError(f"slice {slice_name}: instance_id {task.instance_id} appears twice")
        seen.add(task.instance_id)
    path = slice_path(cfg, slice_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dump_tasks(tasks), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_slice(cfg: Config, slice_name: str) -> list[Task]:
    """The slice's tasks, sorted by instance id; [] when the slice does not exist."""
    path = slice_path(cfg, slice_name)
    if not path.exists():
        return []
    tasks = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            tasks.append(Task.from_swebench(json.loads(line)))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return tasks


def list_slices(cfg: Config) -> list[str]:
    folder = tasks_dir(cfg)
    return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []


def load_all(cfg: Config) -> dict[str, list[Task]]:
    return {name: load_slice(cfg, name) for name in list_slices(cfg)}


@dataclass
class UpsertResult:
    """What an import did to a slice: ``added``/``updated`` are the tasks that changed."""

    path: Path
    added: list[Task] = field(default_factory=list)
    updated: list[Task] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> list[Task]:
        return self.added + self.updated


def upsert(cfg: Config, slice_name: str, tasks: Iterable[Task]) -> UpsertResult:
    """Merge ``tasks`` into the slice by instance id; identical tasks are left untouched."""
    current = {t.instance_id: t for t in load_slice(cfg, slice_name)}
    result = UpsertResult(path=slice_path(cfg, slice_name))
    for task in tasks:
        old = current.get(task.instance_id)
        if old is None:
            result.added.append(task)
        elif old.to_swebench() == task.to_swebench():
            result.unchanged += 1
            continue
        else:
            result.updated.append(task)
        current[task.instance_id] = task
    if result.changed or not result.path.exists():
        save_slice(cfg, slice_name, current.values())
    return result


def save_context(cfg: Config, slice_name: str, records: Iterable[dict]) -> Path:
    """Issues and PRs that did not become tasks: kept for the reasoning data, keyed by ``id``."""
    path = tasks_dir(cfg) / CONTEXT_DIR / f"{slice_name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                existing[rec["id"]] = rec
    for rec in records:
        existing[rec["id"]] = rec
    text = "".join(json.dumps(existing[k], sort_keys=True) + "\n" for k in sorted(existing))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
