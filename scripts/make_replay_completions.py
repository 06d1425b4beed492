"""Write recorded, clearly labelled SYNTHETIC completions for a task slice (the replay engine's input).

    .venv/bin/python scripts/make_replay_completions.py --tasks demo [--out FILE] [--patches 40 --tests 40]

No model wrote these: see vtforge/fixtures/completions.py for what each kind of record is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtforge.cli.selfplay import default_replay_file, load_tasks
from vtforge.config import load_config
from vtforge.fixtures.completions import make_records, write_records
from vtforge.selfplay.task import as_selfplay_task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", required=True, help="task-bank slice or JSONL file of tasks")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--patches", type=int, default=40)
    parser.add_argument("--tests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fp-every", type=int, default=3, help="every Nth task is false-positive prone (0: none)"
    )
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    cfg = load_config(args.config)
    tasks = [as_selfplay_task(r) for r in load_tasks(cfg, args.tasks)]
    out = args.out or default_replay_file(cfg, args.tasks)
    count = write_records(
        out,
        make_records(tasks, patches=args.patches, tests=args.tests, seed=args.seed, fp_every=args.fp_every),
    )
    print(f"wrote {count} synthetic recorded completions for {len(tasks)} tasks to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
