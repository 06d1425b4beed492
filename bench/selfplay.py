"""The 40 x 40 self-play execution matrix: optimised runner vs a naive runner, same machine, same run.

    .venv/bin/python bench/selfplay.py [--patches 40 --tests 40 --naive-sample 12]

Task: the first demo-bank task when the bank exists, else the toy repository of the sandbox tests
(a real git repository with a bug, its gold patch and tests). Candidates: the recorded synthetic
completions of ``vtforge.fixtures.completions`` (40 BugFixer + 40 TestWriter outputs), parsed.

- optimised: ``MatrixRunner`` (one prepared environment; one base run, one gold run, one run per
  unique normalised patch with every unique test in one pytest session; ``forge.sandbox.concurrency``).
- naive: a fresh workspace and one sandbox run per (patch, test) pair, every proposal counted
  (no dedup) - P x T runs. That would take hours here, so it is measured on a random sample of
  pairs and extrapolated (the output says so).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtforge.config import Config, load_config
from vtforge.fixtures.completions import records_for_task
from vtforge.sandbox.api import Limits
from vtforge.sandbox.local import LocalSandbox
from vtforge.selfplay.matrix import MatrixRunner, NaiveRunner, generated_test
from vtforge.selfplay.parsing import parse_edit, parse_test_edit
from vtforge.selfplay.task import RepoView, SelfplayTask, as_selfplay_task


def pick_task(root: Path) -> tuple[SelfplayTask, str]:
    try:
        from vtforge.tasks.demo import ensure_demo_bank

        tasks = ensure_demo_bank(load_config())
        if tasks:
            return as_selfplay_task(tasks[0]), "demo bank"
    except Exception as exc:  # the bank is optional for this benchmark
        print(f"(demo bank not available: {type(exc).__name__}: {exc}; using the toy repository)")
    from tests.sandbox.toyrepo import make_toy_repo

    return as_selfplay_task(make_toy_repo(root).instance()), "toy repository"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patches", type=int, default=40)
    parser.add_argument("--tests", type=int, default=40)
    parser.add_argument("--naive-sample", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = load_config()
    root = Path(tempfile.mkdtemp(prefix="vtforge-bench-selfplay-"))
    try:
        return measure(args, cfg, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(args: argparse.Namespace, cfg: Config, root: Path) -> int:
    task, where = pick_task(root)
    view = RepoView(task.repo_dir, task.base_commit)
    records = records_for_task(task, patches=args.patches, tests=args.tests, seed=args.seed)
    proposals = []  # every parsed BugFixer proposal (duplicates included)
    tests = {}
    for record in records:
        if record["role"] == "bugfixer":
            edit = parse_edit(record["completion"], view.read, view.tree, scope=task.task_id)
            if edit.ok:
                proposals.append((edit.key, edit.diff))
        elif record["role"] == "testwriter":
            test = parse_test_edit(record["completion"], view.read, view.tree, scope=task.task_id)
            if test.ok:
                tests.setdefault(
                    test.key, generated_test(test.key, test.path, test.names, test.edit.new[test.path])
                )
    # failed parses would be retried in self-play; the matrix is what ran: pad to P x T by reuse
    patches_all = [proposals[i % len(proposals)] for i in range(args.patches)]
    test_list = list(tests.values())
    unique = dict(patches_all)
    box = LocalSandbox(Limits.from_config(cfg.forge.sandbox), work_dir=root / "work")
    box.concurrency = cfg.forge.sandbox.concurrency
    prepared = box.prepare(task.repo_spec())
    print(
        f"task: {task.task_id} ({where}); {len(patches_all)} patch proposals ({len(unique)} unique) x "
        f"{args.tests} test proposals ({len(test_list)} unique); concurrency {box.concurrency}"
    )

    started = time.perf_counter()
    runner = MatrixRunner(box)
    matrix = runner.base(prepared, task, test_list, view.tree_set)
    runner.rows(prepared, task, matrix, unique)
    optimised = time.perf_counter() - started
    print(
        f"optimised: {optimised:.1f}s for {matrix.runs} sandbox runs "
        f"(base + gold + {len(unique)} unique patches), every pair and every task test covered"
    )

    naive = NaiveRunner(box)
    rng = random.Random(args.seed)
    pairs = [(p, t) for p in range(len(patches_all)) for t in range(args.tests)]
    sample = rng.sample(pairs, min(args.naive_sample, len(pairs)))
    started = time.perf_counter()
    agree = 0
    for p, t in sample:
        test = test_list[t % len(test_list)]
        key, diff = patches_all[p]
        passed = naive.pair(prepared, task, diff, test)
        agree += passed == matrix.rows[key].passes.get(test.test_id, False)
    per_pair = (time.perf_counter() - started) / len(sample)
    # generous to the baseline: assume it would scale perfectly over the same concurrency
    naive_total = per_pair * len(pairs) / box.concurrency
    print(
        f"naive: {per_pair:.2f}s per (patch, test) run, measured on {len(sample)} random pairs "
        f"of {len(pairs)}; "
        f"extrapolated to all {len(pairs)} pairs: {naive_total:.0f}s "
        f"(divided by the concurrency, {box.concurrency}, as if the naive loop ran in parallel too)"
    )
    print(f"naive and optimised agree on {agree}/{len(sample)} sampled pairs")
    print(
        f"ratio: {naive_total / optimised:.1f} naive time / optimised time "
        f"({args.patches}x{args.tests} matrix; naive extrapolated "
        f"from {len(sample)} sampled pairs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
