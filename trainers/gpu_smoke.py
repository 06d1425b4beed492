"""GPU smoke test of the trainers: SFT then GRPO through the real code paths, in under five minutes.

    python -m vtforge.trainers.gpu_smoke                      # random ~30M-parameter Qwen2 from a config
    python -m vtforge.trainers.gpu_smoke --model /models/Qwen2.5-0.5B-Instruct   # a local model folder
    python -m vtforge.trainers.gpu_smoke --model smollm2-135m # a registry name (forge.models)
    python -m vtforge.trainers.gpu_smoke --vllm               # GRPO generation with vLLM (colocated)
    python -m vtforge.trainers.gpu_smoke --allow-cpu --small  # the same script on a CPU (CI, laptops)

(``python`` is the checkout's ``.venv/bin/python``.)

It builds a throw-away workspace with a synthetic warehouse (``vtforge.fixtures.warehouse``), runs
``run_sft`` and ``run_grpo`` exactly as ``vtforge train`` does (bf16 on the GPU, events to the
landing zone), then checks: the GPU was used, the SFT loss fell, every step emitted a
``training_step`` event, GRPO produced rewards. Nothing is downloaded; the GRPO reward is the
deterministic bandit (there are no sandbox tasks in a throw-away warehouse). Exit code 0 = all
checks passed; the last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _levers(small: bool, vllm: bool) -> str:
    return f"""
[forge.warehouse]
data_dir = ".forge"
[forge.context]
train_tokens = {1024 if small else 4096}
[forge.train]
sft_batch_size = {4 if small else 16}
save_steps = 1000
num_generations = {4 if small else 8}
grpo_prompts_per_step = {2 if small else 4}
max_completion_tokens = {16 if small else 128}
use_vllm = {"true" if vllm else "false"}
[forge.curriculum]
hard_return_stable_steps = 2
replay_mix_fraction = 0.25
"""


def _random_model_folder(folder: Path, small: bool) -> Path:
    """A randomly initialised Qwen2 (about 30M parameters; 0.1M with --small) and its tokenizer."""
    from vtforge.fixtures.warehouse import rl_rows, sft_rows
    from vtforge.trainers.tiny import tiny_model, train_tokenizer

    texts = [m["content"] for row in sft_rows(200) for m in row[3]] + [r[1] for r in rl_rows({"medium": 50})]
    tok = train_tokenizer(texts, vocab_size=512 if small else 4096)
    model = tiny_model(tok, hidden_size=64 if small else 512, layers=2 if small else 8, max_positions=4096)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        help="registry name (forge.models, e.g. smollm2-135m) or local model folder "
        "(default: a random model built from a config)",
    )
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--grpo-steps", type=int, default=8)
    parser.add_argument("--vllm", action="store_true", help="GRPO generation with vLLM (must be installed)")
    parser.add_argument("--allow-cpu", action="store_true", help="run even without a GPU")
    parser.add_argument("--small", action="store_true", help="tiny sizes (for a CPU)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("no CUDA device; pass --allow-cpu to run on the CPU", file=sys.stderr)
        return 2
    from vtforge.config import load_config
    from vtforge.fixtures.warehouse import build_warehouse
    from vtforge.models import ModelError
    from vtforge.trainers.common import model_folder
    from vtforge.trainers.grpo import GrpoOptions, run_grpo
    from vtforge.trainers.sft import SftOptions, run_sft

    started = time.perf_counter()
    named = None
    if args.model:  # resolved in the working directory's workspace, so a GGUF is converted once there
        try:
            named = str(model_folder(load_config(), args.model))
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    checks: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="vtforge-gpu-smoke-") as tmp:
        ws = Path(tmp)
        (ws / "vtcode.toml").write_text(_levers(args.small, args.vllm))
        cfg = load_config(cwd=ws)
        build_warehouse(cfg.duckdb_path, sft=256, rl={"easy": 8, "medium": 16, "hard": 8}, replay=8)
        model = named or str(_random_model_folder(ws / "start-model", args.small))
        sft = run_sft(
            cfg, SftOptions(model=model, max_steps=args.sft_steps, learning_rate=None if args.model else 1e-3)
        )
        grpo = run_grpo(
            cfg,
            GrpoOptions(
                model=sft["final"],
                max_steps=args.grpo_steps,
                reward="bandit",
                learning_rate=None if args.model else 1e-4,
            ),
        )
        import duckdb

        glob = str(cfg.landing_dir / "training_step" / "*" / "*.parquet")
        events = duckdb.sql(f"SELECT trainer, count(*) FROM '{glob}' GROUP BY trainer").fetchall()
    counts = dict(events)
    checks["gpu_used"] = torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0
    checks["sft_loss_fell"] = sft["last_loss"] < sft["first_loss"]
    checks["sft_events"] = counts.get("sft") == sft["steps"] == args.sft_steps
    checks["grpo_events"] = counts.get("grpo") == grpo["steps"] == args.grpo_steps
    checks["grpo_rewards"] = len(grpo["reward_means"]) == args.grpo_steps
    if args.allow_cpu and not torch.cuda.is_available():
        checks.pop("gpu_used")
    summary = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "model": args.model or "random-from-config",
        "seconds": round(time.perf_counter() - started, 1),
        "sft": {k: sft[k] for k in ("steps", "seconds", "first_loss", "last_loss")},
        "grpo": {k: grpo[k] for k in ("steps", "seconds", "reward_means", "filtering")},
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20)
        if torch.cuda.is_available()
        else None,
        "checks": checks,
    }
    print(json.dumps(summary, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
