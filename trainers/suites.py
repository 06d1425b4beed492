"""Held-out evaluation suites: ``[forge.eval.suites]`` names → decontaminated task lists + manifests.

A suite is a task-bank slice or a SWE-bench-format file (JSON Lines, JSON or Parquet, with
``repo_dir``), named in ``forge.eval.suites``. Before a policy is measured on it, the suite is
decontaminated against every training dataset of the warehouse (``sft_examples``, ``rl_prompts``,
``replay_buffer``): the tasks those rows train on are checked with ``vtforge tasks decontaminate``'s
own function (``vtforge.tasks.decontam.decontaminate``), each suite task playing the eval task; a
suite task is dropped, with its reasons, when a training row is that very task (``training-row:``)
or when a training task gets a flag of the kinds ``forge.eval.contamination`` counts:

- ``repo`` (default, the bank's own rule): any flag — same repository, same edited file, same gold
  patch or problem statement;
- ``file``: the same edited file or a duplicate; ``duplicate``: a duplicate only.

What is left, sorted by instance id, is cut to ``forge.eval.limit`` tasks. Each load writes the
suite's manifest to ``docs/research/suites/<suite>.json`` and ``.md`` in the workspace (as task
slices' manifests go to ``docs/research/datasets/``): source, kept task ids with content hashes,
dropped ids with reasons, the decontamination counts and ``suite_sha256`` (the slice hash of the
kept tasks, machine-independent). Nothing time-dependent goes in.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtforge import constants as C
from vtforge.config import Config, Origin
from vtforge.tasks.decontam import decontaminate
from vtforge.tasks.manifest import instance_record, task_table
from vtforge.tasks.model import Task

TRAINING_TABLES = ("sft_examples", "rl_prompts", "replay_buffer")
TRAINING_ROW = "training-row"
SUITE_SPLIT = "eval"
MANIFEST_VERSION = 1
# the decontamination flag kinds (vtforge.tasks.decontam) each contamination level drops on
COUNTED_FLAGS = {
    "repo": ("eval-repo", "eval-file", "eval-duplicate"),
    "file": ("eval-file", "eval-duplicate"),
    "duplicate": ("eval-duplicate",),
}


class SuiteError(ValueError):
    """A suite that cannot be used; the message names the config key and the file."""


@dataclass
class Suite:
    """A decontaminated suite: the tasks a policy is measured on, and what was left out and why."""

    name: str
    source: str  # "slice:<name>" or the file's path
    tasks: list[Task]
    dropped: dict[str, list[str]] = field(default_factory=dict)  # instance id -> reasons
    training_tasks: int = 0
    training_rows: dict[str, int] = field(default_factory=dict)  # table -> distinct task ids
    contamination: str = C.EVAL_CONTAMINATION
    candidates: int = 0  # tasks in the source
    limit: int | None = None

    @property
    def task_ids(self) -> list[str]:
        return [t.instance_id for t in self.tasks]

    @property
    def sha256(self) -> str:
        from vtforge.tasks.manifest import slice_hash

        return slice_hash(self.tasks)

    def decontamination(self) -> dict[str, Any]:
        by_flag: Counter[str] = Counter()
        for reasons in self.dropped.values():
            by_flag.update({r.split(":", 1)[0] for r in reasons})
        return {
            "level": self.contamination,
            "counted_flags": list(COUNTED_FLAGS[self.contamination]),
            "candidates": self.candidates,
            "dropped": len(self.dropped),
            "kept": self.candidates - len(self.dropped),
            "by_flag": dict(sorted(by_flag.items())),
            "training_tables": dict(sorted(self.training_rows.items())),
            "training_tasks": self.training_tasks,
        }


def _config_file(cfg: Config, dotted: str) -> str:
    """Where a lever was set (``vtcode.toml:12``; a table: the file of its first key), else the
    config file that would hold it."""
    origin = cfg.origin(dotted)
    if origin.kind == "default":
        inner = [o for k, o in cfg.origins.items() if k.startswith(f"{dotted}.") and o.kind != "default"]
        if inner:
            origin = inner[0] if inner[0].kind == "env" else Origin("file", inner[0].path)
        else:
            origin = Origin("file", cfg.files[-1] if cfg.files else cfg.root / C.CONFIG_FILE_NAME)
    return str(origin)


def suite_name(cfg: Config, name: str | None) -> str:
    """``name``, else ``forge.eval.default_suite``; it must be a key of ``forge.eval.suites``."""
    suites = cfg.forge.eval.suites
    if name is None:
        name = cfg.forge.eval.default_suite
        if name is None:
            raise SuiteError(
                f"no suite given and forge.eval.default_suite is not set ({_config_file(cfg, 'eval')})"
            )
    if name not in suites:
        known = ", ".join(sorted(suites)) or "none"
        raise SuiteError(
            f"forge.eval.suites has no suite {name!r} ({_config_file(cfg, 'eval.suites')}); known: {known}"
        )
    return name


def _read_file(cfg: Config, name: str, path: Path) -> list[Task]:
    from vtforge.sandbox.evaluate import read_records

    where = _config_file(cfg, f"eval.suites.{name}")
    if not path.is_file():
        raise SuiteError(f"forge.eval.suites.{name}: file not found: {path} ({where})")
    try:
        records = read_records(path)
    except ValueError as exc:
        raise SuiteError(f"forge.eval.suites.{name}: {exc} ({where})") from None
    tasks = []
    for number, record in enumerate(records, start=1):
        try:
            tasks.append(Task.from_swebench(record))
        except ValueError as exc:
            raise SuiteError(f"forge.eval.suites.{name}: {path} record {number}: {exc} ({where})") from None
    return tasks


def source_tasks(cfg: Config, name: str) -> tuple[str, list[Task]]:
    """The suite's source (``slice:<name>`` or a path) and its tasks, sorted by instance id."""
    from vtforge.tasks.bank import list_slices, load_slice

    value = cfg.forge.eval.suites[name]
    where = _config_file(cfg, f"eval.suites.{name}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = cfg.root / path
    if value.endswith((".jsonl", ".json", ".parquet")) or path.is_file():
        source, tasks = str(path), _read_file(cfg, name, path)
    else:
        try:
            tasks = load_slice(cfg, value)
        except ValueError as exc:
            raise SuiteError(f"forge.eval.suites.{name} = {value!r}: {exc} ({where})") from None
        if not tasks:
            known = ", ".join(list_slices(cfg)) or "none"
            raise SuiteError(
                f"forge.eval.suites.{name} = {value!r}: no such task slice (or an empty one) under "
                f"{cfg.data_dir / 'tasks'}; slices: {known} ({where})"
            )
        source = f"slice:{value}"
    seen: set[str] = set()
    for task in tasks:
        if task.instance_id in seen:
            raise SuiteError(
                f"forge.eval.suites.{name}: instance_id {task.instance_id} appears twice ({where})"
            )
        seen.add(task.instance_id)
    return source, sorted(tasks, key=lambda t: t.instance_id)


def _open_warehouse(cfg: Config) -> Any:
    """A read-only snapshot of the warehouse (never blocks its writer), or None when there is none."""
    import duckdb

    from vtforge.warehouse.connection import snapshot

    if not cfg.duckdb_path.is_file():
        return None
    snap = snapshot(cfg.duckdb_path)
    return duckdb.connect(str(snap), read_only=True) if snap is not None else None


def training_task_ids(con: Any) -> dict[str, set[str]]:
    """Task ids of the train-split rows of every training dataset in the warehouse, per table
    (tables absent: skipped)."""
    if con is None:
        return {}
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    out: dict[str, set[str]] = {}
    for table in TRAINING_TABLES:
        if table in have:
            columns = {
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
                ).fetchall()
            }
            # rows of another split (rl_prompts of an eval slice) are never trained on
            train_only = " AND coalesce(split, 'train') = 'train'" if "split" in columns else ""
            rows = con.execute(
                f'SELECT DISTINCT task_id FROM "{table}" WHERE task_id IS NOT NULL{train_only}'
            ).fetchall()
            out[table] = {str(r[0]) for r in rows}
    return out


def _warehouse_tasks(con: Any, ids: set[str]) -> dict[str, Task]:
    """Tasks the warehouse registered (its ``tasks`` table), for training ids not in the bank."""
    if con is None or not ids:
        return {}
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "tasks" not in have:
        return {}
    rows = con.execute(
        "SELECT task_id, repo, base_commit, problem_statement, patch, test_patch FROM tasks "
        "WHERE list_contains(?, task_id)",
        [sorted(ids)],
    ).fetchall()
    out: dict[str, Task] = {}
    for task_id, repo, base, statement, patch, test_patch in rows:
        out[task_id] = Task(
            instance_id=task_id,
            repo=repo or "",
            base_commit=base or "",
            problem_statement=statement or "",
            patch=patch or "",
            test_patch=test_patch or "",
        )
    return out


def training_tasks(cfg: Config, ids: set[str], con: Any = None) -> list[Task]:
    """The tasks behind training rows, as training tasks: the bank's, else the warehouse's, else an
    id alone (only the same-id rule can catch it)."""
    from vtforge.tasks.bank import load_all

    bank = {t.instance_id: t for tasks in load_all(cfg).values() for t in tasks}
    missing = {i for i in ids if i not in bank}
    registered = _warehouse_tasks(con, missing)
    out = []
    for task_id in sorted(ids):
        task = bank.get(task_id) or registered.get(task_id)
        if task is None:
            task = Task(instance_id=task_id, repo="", base_commit="", problem_statement="", patch="")
        out.append(task.replace(split="train", contamination_flags=[]))
    return out


def contamination_of(
    suite_task: Task, training: list[Task], training_ids: dict[str, set[str]], level: str
) -> list[str]:
    """Why ``suite_task`` may not be evaluated on: the training rows that are it, and the flags
    ``decontaminate`` gives training tasks against it (the kinds ``level`` counts)."""
    reasons = [
        f"{TRAINING_ROW}:{table}"
        for table, ids in sorted(training_ids.items())
        if suite_task.instance_id in ids
    ]
    as_eval = suite_task.replace(split=SUITE_SPLIT)
    flagged, _ = decontaminate(training, [as_eval])
    counted = COUNTED_FLAGS[level]
    for task in flagged:
        if task.instance_id == suite_task.instance_id:
            continue  # the task itself: caught above as a training row
        for flag in task.contamination_flags:
            if flag.split(":", 1)[0] in counted:
                reasons.append(f"{flag} via {task.instance_id}")
    return sorted(set(reasons))


def load_suite(
    cfg: Config, name: str | None = None, *, limit: int | None = None, manifest: bool = True
) -> Suite:
    """Suite ``name`` (default ``forge.eval.default_suite``) decontaminated, cut to ``limit`` (default
    ``forge.eval.limit``), its manifest written. Raises ``SuiteError`` naming the key and file."""
    ev = cfg.forge.eval
    name = suite_name(cfg, name)
    source, tasks = source_tasks(cfg, name)
    con = _open_warehouse(cfg)
    try:
        ids = training_task_ids(con)
        all_ids = set().union(*ids.values()) if ids else set()
        training = training_tasks(cfg, all_ids, con)
    finally:
        if con is not None:
            con.close()
    suite = Suite(
        name=name,
        source=source,
        tasks=[],
        training_tasks=len(training),
        training_rows={t: len(v) for t, v in ids.items()},
        contamination=ev.contamination,
        candidates=len(tasks),
        limit=limit or ev.limit,
    )
    kept = []
    for task in tasks:
        reasons = contamination_of(task, training, ids, ev.contamination)
        if reasons:
            suite.dropped[task.instance_id] = reasons
        else:
            kept.append(task.replace(split=SUITE_SPLIT))
    suite.tasks = kept[: suite.limit]
    if manifest:
        write_suite_manifest(cfg, suite)
    return suite


def build_suite_manifest(suite: Suite) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "suite": suite.name,
        "source": suite.source,
        "limit": suite.limit,
        "tasks": len(suite.tasks),
        "suite_sha256": suite.sha256,
        "task_ids": suite.task_ids,
        "decontamination": suite.decontamination(),
        "dropped": {k: v for k, v in sorted(suite.dropped.items())},
        "instances": [instance_record(t) for t in suite.tasks],
    }


def render_suite_markdown(manifest: dict[str, Any]) -> str:
    d = manifest["decontamination"]
    lines = [
        f"# Evaluation suite `{manifest['suite']}`",
        "",
        "Generated by `vtforge evaluate` / the trainers' skill evaluation; do not edit. "
        "See docs/EVALUATION.md.",
        "",
        f"- source: `{manifest['source']}`",
        f"- tasks evaluated: **{manifest['tasks']}** (limit {manifest['limit']}; "
        f"{d['kept']} of {d['candidates']} survive decontamination)",
        f"- suite_sha256: `{manifest['suite_sha256']}`",
        f"- decontamination: level `{d['level']}` (drops on {', '.join(d['counted_flags'])} and "
        f"training rows of the task itself), against {d['training_tasks']} training tasks "
        f"({', '.join(f'{k} {v}' for k, v in d['training_tables'].items()) or 'no training tables'})",
        "",
        *task_table(manifest["instances"]),
    ]
    lines += ["", "## Dropped", ""]
    if not manifest["dropped"]:
        lines.append("none")
    for task_id, reasons in manifest["dropped"].items():
        lines.append(f"- {task_id}: {'; '.join(reasons)}")
    return "\n".join(lines) + "\n"


def write_suite_manifest(cfg: Config, suite: Suite, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/<suite>.json`` and ``.md`` (default ``<workspace>/docs/research/suites``)."""
    folder = out_dir or (cfg.root / C.EVAL_MANIFEST_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = build_suite_manifest(suite)
    json_path, md_path = folder / f"{suite.name}.json", folder / f"{suite.name}.md"
    json_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    md_path.write_text(render_suite_markdown(manifest))
    return json_path, md_path
