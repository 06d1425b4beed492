"""Warm worker start-up: zygotes forked from a template interpreter vs zygotes started on their own.

    .venv/bin/python bench/zygotes.py [--tasks 8 --reps 3] [--bank DIR]

A GRPO batch over a large task bank meets new tasks at every step, and each new prepared
repository needs a zygote before its first warm run. This times ``WarmPool.zygote_for`` for the
first ``--tasks`` demo-bank tasks (each its own prepared repository), alternating in the same
process between ``forge.sandbox.warm_template = true`` (one template start, then a fork per
repository) and ``false`` (a new sandboxed interpreter per repository, importing pytest and its
plugins each time), each with its own fresh sandbox folder and the default levers.

Ends with ``ratio: X`` = median time to start all of them standalone over the same with the
template (its own start included).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtforge.config import load_config


def start_all(template: bool, tasks: list, cfg) -> tuple[float, list[float]]:
    """Seconds to have every task's zygote ready, and each ``zygote_for`` call's share."""
    from vtforge.sandbox.api import Limits, RepoSpec
    from vtforge.sandbox.local import LocalSandbox

    sandbox = cfg.forge.sandbox
    work = Path(tempfile.mkdtemp(prefix="vtforge-bench-zygotes-", dir="/var/tmp"))
    box = LocalSandbox(
        Limits.from_config(sandbox),
        work_dir=work,
        warm=True,
        warm_template=template,
        disk_mb=sandbox.disk_mb or None,
    )
    try:
        prepared = [box.prepare(RepoSpec(Path(t.repo_dir), t.base_commit)) for t in tasks]
        assert box.warm is not None
        started = time.perf_counter()
        each = []
        for repo in prepared:
            t = time.perf_counter()
            zygote = box.warm.zygote_for(repo)
            each.append(time.perf_counter() - t)
            if zygote is None or (zygote.template is not None) != template:
                raise SystemExit(f"{repo.key}: no zygote of the kind asked for: {box.warm.refused(repo.key)}")
        return time.perf_counter() - started, each
    finally:
        box.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    from vtforge.tasks.demo import ensure_demo_bank

    ARGS.bank.mkdir(parents=True, exist_ok=True)
    toml = ARGS.bank / "vtcode.toml"
    if not toml.exists():
        toml.write_text('[forge.warehouse]\ndata_dir = ".forge"\n')
    cfg = load_config(toml)
    tasks = list(ensure_demo_bank(cfg))[: ARGS.tasks]
    print(f"{len(tasks)} demo tasks, {ARGS.reps} alternating runs each way", flush=True)
    totals: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(ARGS.reps):
        for template in (False, True):
            total, each = start_all(template, tasks, cfg)
            totals[template].append(total)
            name = "template " if template else "standalone"
            print(f"{name}: all {total:.3f}s; each (ms) {[round(x * 1000) for x in each]}", flush=True)
    standalone, forked = statistics.median(totals[False]), statistics.median(totals[True])
    print(f"standalone zygotes: {standalone:.3f}s for {len(tasks)} (median)")
    print(f"forked from a template: {forked:.3f}s for {len(tasks)}, the template's start included (median)")
    print(f"ratio: {standalone / forked:.2f} standalone/template time to start {len(tasks)} zygotes")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--bank", type=Path, default=Path.home() / ".cache" / "vtforge" / "demo-bank")
    ARGS = parser.parse_args()
    sys.exit(main())
