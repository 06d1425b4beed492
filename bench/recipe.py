"""The recipe's claim, measured at a small budget: does agentless SFT before GRPO (staged) beat GRPO
from the base model (agentic-only), with the same GRPO budget, on held-out tasks?

    .venv/bin/python bench/recipe.py [--steps N] [--sft-steps N] [--model NAME|PATH] [--tasks N] ...

The task family, the split, the held-out measurement and the sandbox reward are bench/learning.py's
(one-line bugs in tiny git repositories; resolve rate = resolved / judged samples on a held-out
slice that no training step, lever or prompt choice looks at). In one run, from the same start:

- **base**: the starting model as it is;
- **agentless**: SFT for ``--sft-steps`` on the train slice's gold edits (the agentless data);
- **agentic**: GRPO for ``--steps`` from the base model, no SFT;
- **staged**: GRPO for ``--steps`` from the agentless SFT policy (the promotion gates are not
  measured here: the staged GRPO starts with ``force``, as a measurement, not a promotion).

Prints the four held-out resolve rates, both GRPO curves, and ends with
``ratio: <staged / agentic>`` (or ``staged - agentic`` when agentic is 0).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import learning  # bench/learning.py: the task family, the workspace and the measurement

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(args: argparse.Namespace) -> int:
    from vtforge.trainers.grpo import run_grpo
    from vtforge.trainers.rewards import SandboxReward
    from vtforge.trainers.sft import SftOptions, run_sft

    began = time.perf_counter()
    setup = learning.set_up(args, "vtforge-bench-recipe-")
    if setup is None:
        return 2
    base_folder, ws, cfg, held_rows = setup.start, setup.ws, setup.cfg, setup.held_rows
    try:
        learning.fill_warehouse(cfg, setup.train_rows, None)
        print(
            f"model {args.model}; {len(setup.train)} train / {len(setup.held_out)} held-out one-line-bug "
            f"tasks (seed {args.seed}); {args.eval_samples} samples per held-out task; budgets: SFT "
            f"{args.sft_steps} steps, GRPO {args.steps} steps",
            flush=True,
        )
        reward = SandboxReward(cfg)
        rates: dict[str, learning.Rate] = {}
        curves: dict[str, list[float]] = {}

        def measure(arm: str, folder: Path) -> None:
            rates[arm] = learning.resolve_rate(folder, held_rows, reward, args)
            print(f"held-out resolve rate, {arm}: {rates[arm].line()}", flush=True)

        def grpo(arm: str, start: Path) -> Path:
            done = run_grpo(cfg, learning.grpo_options(args, start, arm))
            curves[arm] = done["reward_means"]
            return Path(done["final"])

        try:
            measure("base", base_folder)
            sft = run_sft(
                cfg,
                SftOptions(
                    model=str(base_folder),
                    max_steps=args.sft_steps,
                    learning_rate=args.sft_lr,
                    emit_events=False,
                    arm="agentless",
                ),
            )
            print(
                f"SFT: {sft['steps']} steps, loss {sft['first_loss']:.3f} -> {sft['last_loss']:.3f}",
                flush=True,
            )
            measure("agentless", Path(sft["final"]))
            measure("agentic", grpo("agentic", base_folder))
            measure("staged", grpo("staged", Path(sft["final"])))
        finally:
            reward.close()
        for arm, curve in curves.items():
            print(f"{arm} GRPO curve (train reward mean per step): " + " ".join(f"{r:.2f}" for r in curve))
        summary = {arm: rate.value for arm, rate in rates.items()}
        print(json.dumps({"rates": summary, "curves": curves, "wall_s": round(time.perf_counter() - began)}))
        staged, agentic = rates["staged"].value, rates["agentic"].value
        print(learning.ratio_line(staged, agentic, "of staged / agentic-only"))
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    learning.add_arguments(parser, steps_help="GRPO optimiser steps of each arm", sft_steps=20)
    sys.exit(main(parser.parse_args()))
