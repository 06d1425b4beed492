"""Paired A/B of one incremental refresh: two checkouts of vtforge, each in a warm process of its own,
refresh +1 % new events from the same saved state in turn, and the pairs are compared one by one.

Single runs of ``bench/warehouse.py`` move ±20 % on a shared 2-core VM from one run to the next,
more than most single changes to a refresh are worth; alternating two warm processes pair for pair
cancels the drift (both runs of a pair see the same machine). Usage:

    python bench/refresh_ab.py prepare STATE_DIR          # 1M landing events, a full build, +1 %
    python bench/refresh_ab.py compare [--pairs 20] TREE_A:STATE_A TREE_B:STATE_B

``prepare`` builds the state with the code of the checkout it runs from (its models and
``_model_state`` are that code's), so prepare one state per tree when their models differ. A tree
is a checkout with its ``.venv`` (``git worktree add`` one for a commit, and link the ``.venv``).
``compare`` ends with ``ratio: <B / A>`` of the median times (higher: A is faster).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtforge.config import Config

HERE = Path(__file__).resolve().parent


def _config(state: Path) -> Config:
    from vtforge.config import load_config  # imported late: from the tree under test

    return load_config(state / "vtcode.toml", cwd=state, env={})


def prepare(state: Path, events: int, base_tasks: int, increment: float) -> None:
    """A landing zone of ``events`` events, fully materialised, then ``increment`` new events
    landed (not ingested); the warehouse before them is kept as ``before.duckdb``."""
    sys.path.insert(0, str(HERE.parent))  # this checkout's vtforge
    spec = importlib.util.spec_from_file_location("bench_warehouse", HERE / "warehouse.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)  # bench/warehouse.py: the landing generator
    spec.loader.exec_module(bench)
    from vtforge.warehouse.refresh import refresh

    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    (state / "vtcode.toml").write_text(
        '[forge.warehouse]\ndata_dir = ".forge"\n[forge.events]\nflush_max_events = 100000\n'
    )
    config = _config(state)
    bench.make_landing(config, events, base_tasks)
    refresh(config, full=True, exports=False)
    added = bench.add_increment(config, increment, base_tasks)
    shutil.copyfile(config.duckdb_path, state / "before.duckdb")
    print(f"{state}: {added} new events landed after a full build")


def worker(tree: Path, state: Path) -> None:
    """Refresh from ``before.duckdb`` once per line read, with ``tree``'s code (which need not have
    this script: any commit); print wall and CPU seconds."""
    import resource

    sys.path.insert(0, str(tree))  # before the venv's own install of vtforge
    from vtforge.warehouse.refresh import refresh

    config = _config(state)
    for _ in sys.stdin:
        shutil.copyfile(state / "before.duckdb", config.duckdb_path)
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        refresh(config, exports=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        print(f"{wall:.4f} {cpu:.4f}", flush=True)


def compare(specs: list[str], pairs: int) -> None:
    procs = []
    for spec in specs:
        tree, state = spec.split(":", 1)
        python = Path(tree) / ".venv" / "bin" / "python"
        command = [str(python), str(Path(__file__).resolve()), "worker", tree, state]
        procs.append(
            subprocess.Popen(command, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    runs: list[list[tuple[float, float]]] = [[] for _ in procs]
    for round_ in range(pairs + 1):  # the first round warms both processes up
        order = list(range(len(procs))) if round_ % 2 == 0 else list(reversed(range(len(procs))))
        for i in order:
            stdin, stdout = procs[i].stdin, procs[i].stdout
            assert stdin is not None and stdout is not None
            stdin.write("refresh\n")
            stdin.flush()
            line = stdout.readline()
            if not line:
                raise SystemExit(f"{specs[i]}: the worker stopped (see its error above)")
            wall, cpu = map(float, line.split())
            if round_:
                runs[i].append((wall, cpu))
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    for spec, measured in zip(specs, runs, strict=True):
        walls, cpus = [w for w, _ in measured], [c for _, c in measured]
        print(
            f"{spec}: wall median {statistics.median(walls):.3f} s (min {min(walls):.3f}), "
            f"CPU median {statistics.median(cpus):.3f} s"
        )
    a, b = runs
    diffs = [x[0] - y[0] for x, y in zip(a, b, strict=True)]
    faster = sum(d < 0 for d in diffs)
    print(
        f"A - B per pair: median {1000 * statistics.median(diffs):+.1f} ms; A faster in {faster}/{len(diffs)}"
    )
    ratio = statistics.median(w for w, _ in b) / statistics.median(w for w, _ in a)
    print(f"ratio: {ratio:.3f} (B's median refresh time / A's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="build a state to refresh from")
    prep.add_argument("state", type=Path)
    prep.add_argument("--events", type=int, default=1_000_000)
    prep.add_argument("--base-tasks", type=int, default=25)
    prep.add_argument("--increment", type=float, default=0.01)
    work = sub.add_parser("worker", help="(internal) one refresh per line of input")
    work.add_argument("tree", type=Path)
    work.add_argument("state", type=Path)
    cmp = sub.add_parser("compare", help="alternate two trees' refreshes")
    cmp.add_argument("trees", nargs=2, metavar="TREE:STATE")
    cmp.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.state.resolve(), args.events, args.base_tasks, args.increment)
    elif args.command == "worker":
        worker(args.tree.resolve(), args.state)
    else:
        compare(args.trees, args.pairs)


if __name__ == "__main__":
    main()
