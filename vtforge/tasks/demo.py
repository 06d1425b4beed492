"""The demo bank: validated bugs synthesised from small real PyPI packages, built once and cached.

``ensure_demo_bank`` returns the slice ``demo`` when it is already there (and its repositories
still hold their commits); otherwise it downloads the sdists (cached under
``~/.cache/vtforge/sdists/``), synthesises bugs with a fixed seed, verifies each one in the
sandbox, saves the slice and emits ``task_registered`` events. Nothing of it is committed as code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from vtforge import gitrepo
from vtforge.config import Config
from vtforge.locks import locked
from vtforge.sandbox import open_sandbox
from vtforge.tasks.bank import load_slice, save_slice, tasks_dir
from vtforge.tasks.events import emit_registered
from vtforge.tasks.model import Task
from vtforge.tasks.synth.pipeline import SynthReport, synthesize

DEMO_SLICE = "demo"
DEMO_SEED = 0
# Small pure-Python packages whose sdists ship their tests, each suite a few seconds; the last one
# is only used when the first three give fewer tasks than asked for.
DEMO_PACKAGES: tuple[tuple[str, str], ...] = (
    ("inflection", "0.5.1"),
    ("toolz", "1.0.0"),
    ("cachetools", "5.5.0"),
    ("more-itertools", "10.5.0"),
)
MIN_PACKAGES = 3
# the demo's held-out suite (forge.eval.suites.heldout): bugs of a package no demo task comes from,
# registered in the eval split, so the decontamination keeps them
HELDOUT_SLICE = "heldout"
HELDOUT_PACKAGE = ("more-itertools", "10.5.0")
HELDOUT_TASKS = 3


def _usable(tasks: list[Task], min_tasks: int) -> bool:
    if len(tasks) < min_tasks:
        return False
    for task in tasks:
        repo = Path(task.repo_dir)
        if not repo.is_dir() or not gitrepo.has_commit(repo, task.base_commit):
            return False
    return True


def ensure_demo_bank(
    cfg: Config,
    *,
    min_tasks: int = 30,
    log: Callable[[str], None] | None = None,
) -> list[Task]:
    """At least ``min_tasks`` verified tasks from at least 3 packages, as slice ``demo`` (cached)."""
    say = log or (lambda _msg: None)
    existing = load_slice(cfg, DEMO_SLICE)
    if _usable(existing, min_tasks):
        return existing
    with locked(tasks_dir(cfg) / ".demo.lock"):
        existing = load_slice(cfg, DEMO_SLICE)  # another process may have built it meanwhile
        if _usable(existing, min_tasks):
            return existing
        tasks, reports = build_demo_tasks(cfg, min_tasks=min_tasks, log=say)
        if len(tasks) < min_tasks:
            raise RuntimeError(
                f"demo bank: only {len(tasks)} tasks from {', '.join(r.package for r in reports)} "
                f"(wanted {min_tasks}); see the rejection counts: "
                + "; ".join(f"{r.package}: {dict(r.rejected)}" for r in reports)
            )
        save_slice(cfg, DEMO_SLICE, tasks)
        emit_registered(cfg, DEMO_SLICE, tasks)
        say(f"demo bank: {len(tasks)} tasks from {len(reports)} packages saved")
        return load_slice(cfg, DEMO_SLICE)


def build_demo_tasks(
    cfg: Config, *, min_tasks: int = 30, log: Callable[[str], None] | None = None
) -> tuple[list[Task], list[SynthReport]]:
    """Synthesise from the demo packages until ``min_tasks`` (and at least 3 packages) are reached."""
    per_package = math.ceil(min_tasks / MIN_PACKAGES) + 1
    tasks: list[Task] = []
    reports: list[SynthReport] = []
    with open_sandbox(cfg) as box:
        for index, (name, version) in enumerate(DEMO_PACKAGES):
            if index >= MIN_PACKAGES and len(tasks) >= min_tasks:
                break
            want = per_package if index < MIN_PACKAGES else min_tasks - len(tasks)
            report = synthesize(
                cfg,
                name,
                version,
                max_tasks=want,
                seed=DEMO_SEED,
                box=box,
                slice_name=DEMO_SLICE,
                max_tries=3 * want,
                log=log,
            )
            reports.append(report)
            tasks.extend(report.tasks)
            if log:
                log(f"{name} {version}: {report.summary()}")
    return tasks, reports


def ensure_heldout_slice(cfg: Config, *, log: Callable[[str], None] | None = None) -> list[Task]:
    """The demo's held-out slice: ``HELDOUT_TASKS`` validated bugs of ``HELDOUT_PACKAGE`` in the
    ``eval`` split (cached like the bank), registered as tasks so the warehouse knows them."""
    existing = load_slice(cfg, HELDOUT_SLICE)
    if _usable(existing, 1):
        return existing
    name, version = HELDOUT_PACKAGE
    with open_sandbox(cfg) as box:
        report = synthesize(
            cfg,
            name,
            version,
            max_tasks=HELDOUT_TASKS,
            seed=DEMO_SEED,
            box=box,
            slice_name=HELDOUT_SLICE,
            max_tries=4 * HELDOUT_TASKS,
            log=log,
        )
    tasks = [t.replace(split="eval") for t in report.tasks]
    if not tasks:
        raise RuntimeError(f"held-out slice: no task from {name} {version}: {dict(report.rejected)}")
    save_slice(cfg, HELDOUT_SLICE, tasks)
    emit_registered(cfg, HELDOUT_SLICE, tasks)
    return load_slice(cfg, HELDOUT_SLICE)
