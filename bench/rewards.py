"""Rewards per second: a GRPO-sized batch judged by ``SandboxReward``, warm workers vs cold runs.

    .venv/bin/python bench/rewards.py [--tasks 8 --per-task 8 --rounds 2] [--bank DIR] [--backend docker]

The batch: ``--per-task`` completions for each of the first ``--tasks`` demo-bank tasks (64 by
default), half of them the gold patch as a fenced unified diff (reward 1.0), half a patch that adds
a comment to the buggy file (applies, fixes nothing: reward 0.0). The demo bank is built once per
machine under ``~/.cache/vtforge/demo-bank`` (``--bank``), as the sandbox tests build it.

Both paths run the same batch ``--rounds`` times in this process, through ``SandboxReward.many``
(``forge.sandbox.concurrency`` at a time), each with its own fresh sandbox folder: today's path
(``forge.sandbox.warm_workers = false``: a new bubblewrap sandbox, interpreter and pytest per
candidate) and warm workers (a zygote per task, started in the first round, one fork per
candidate). Every reward must be the expected one, on both paths.

``--backend docker`` measures the container backend instead (podman's Docker API here): cold is a
container per candidate, warm is one ``exec`` per candidate in long-lived containers of each task
(one per concurrent run, started in the first round).

Ends with ``ratio: X`` = warm rewards/s over cold rewards/s, over all rounds (the first round
pays for starting the zygotes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtforge.config import load_config


def completion(patch: str) -> str:
    return f"The fix:\n\n```diff\n{patch.rstrip()}\n```\n"


def wrong_patch(task) -> str:
    """One comment line added at the top of the file the gold patch fixes."""
    import difflib
    import subprocess

    from vtforge.sandbox.patches import files_in_patch

    path = files_in_patch(task.patch)[0]
    old = subprocess.run(
        ["git", "-C", task.repo_dir, "show", f"{task.base_commit}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    new = "# not the fix\n" + old
    diff = difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}")
    return f"diff --git a/{path} b/{path}\n" + "".join(diff)


def batch(tasks: list, per_task: int) -> tuple[list[str], list[dict], list[float]]:
    completions, rows, expected = [], [], []
    for task in tasks:
        row = {
            "task_id": task.instance_id,
            "repo_dir": task.repo_dir,
            "base_commit": task.base_commit,
            "fail_to_pass": list(task.fail_to_pass),
            "pass_to_pass": list(task.pass_to_pass),
            "test_patch": task.test_patch,
        }
        gold, wrong = completion(task.patch), completion(wrong_patch(task))
        for i in range(per_task):
            # distinct texts, as sampled completions are: a trailing note the patch parser ignores
            completions.append((gold if i % 2 == 0 else wrong) + f"\n(sample {i})\n")
            rows.append(row)
            expected.append(1.0 if i % 2 == 0 else 0.0)
    return completions, rows, expected


def measure(name: str, warm: bool, data_dir: Path, completions, rows, expected, rounds: int) -> list[float]:
    from vtforge.trainers.rewards import SandboxReward

    os.environ["VTFORGE_SANDBOX__WARM_WORKERS"] = "true" if warm else "false"
    os.environ["VTFORGE_SANDBOX__BACKEND"] = ARGS.backend
    os.environ["VTFORGE_WAREHOUSE__DATA_DIR"] = str(data_dir)
    cfg = load_config(ARGS.bank / "vtcode.toml")
    reward = SandboxReward(cfg, flaky_reruns=0)
    per_round = []
    try:
        for task_row in {r["task_id"]: r for r in rows}.values():
            reward._prepare(task_row)  # the task's checkout, cached: not what is measured
        for index in range(rounds):
            started = time.perf_counter()
            values = reward.many(completions, rows)
            elapsed = time.perf_counter() - started
            wrong = [i for i, (v, e) in enumerate(zip(values, expected, strict=True)) if v != e]
            if wrong:
                i = wrong[0]
                judged = reward.judge(completions[i], rows[i])
                raise SystemExit(
                    f"{name}: {len(wrong)} unexpected rewards, e.g. {rows[i]['task_id']}: {judged}"
                )
            per_round.append(elapsed)
            print(
                f"{name:6s} round {index + 1}: {len(values)} rewards in {elapsed:6.1f}s = "
                f"{len(values) / elapsed:6.2f} rewards/s",
                flush=True,
            )
    finally:
        reward.close()
    return per_round


def main() -> int:
    from vtforge.tasks.demo import ensure_demo_bank

    ARGS.bank.mkdir(parents=True, exist_ok=True)
    toml = ARGS.bank / "vtcode.toml"
    if not toml.exists():
        toml.write_text('[forge.warehouse]\ndata_dir = ".forge"\n')
    tasks = ensure_demo_bank(load_config(toml))
    # spread over the packages, as a GRPO batch samples prompts
    by_package: dict[str, list] = {}
    for task in tasks:
        by_package.setdefault(task.instance_id.split("__")[0], []).append(task)
    chosen = []
    while len(chosen) < ARGS.tasks and any(by_package.values()):
        for queue in by_package.values():
            if queue and len(chosen) < ARGS.tasks:
                chosen.append(queue.pop(0))
    completions, rows, expected = batch(chosen, ARGS.per_task)
    os.environ["VTFORGE_SANDBOX__BACKEND"] = ARGS.backend
    cfg = load_config(toml)
    print(
        f"{len(completions)} completions over {len(chosen)} demo tasks "
        f"({', '.join(sorted(by_package))}), half correct; {ARGS.rounds} rounds each; "
        f"concurrency {cfg.forge.sandbox.concurrency}; backend {cfg.forge.sandbox.backend}",
        flush=True,
    )
    root = Path(tempfile.mkdtemp(prefix="vtforge-bench-rewards-"))
    try:
        cold = measure("cold", False, root / "cold", completions, rows, expected, ARGS.rounds)
        warm = measure("warm", True, root / "warm", completions, rows, expected, ARGS.rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = len(completions)
    cold_rate, warm_rate = n * len(cold) / sum(cold), n * len(warm) / sum(warm)
    steady = n * (len(warm) - 1) / sum(warm[1:]) if len(warm) > 1 else warm_rate
    docker = ARGS.backend == "docker"
    cold_what = "a container per candidate" if docker else "a sandbox per candidate"
    warm_what = "containers per task, exec per candidate" if docker else "zygote per task, fork per candidate"
    worker = "container" if docker else "zygote"
    print(f"cold ({cold_what}): {cold_rate:.2f} rewards/s")
    print(f"warm ({warm_what}): {warm_rate:.2f} rewards/s, {steady:.2f} after round 1")
    print(
        f"ratio: {warm_rate / cold_rate:.2f} warm/cold rewards per second on {ARGS.backend} "
        f"({n} rewards x {ARGS.rounds} rounds, {worker} start-up included; {steady / cold_rate:.2f} after it)"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--per-task", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", choices=["local", "docker"], default="local")
    parser.add_argument("--bank", type=Path, default=Path.home() / ".cache" / "vtforge" / "demo-bank")
    ARGS = parser.parse_args()
    sys.exit(main())
