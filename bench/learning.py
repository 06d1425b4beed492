"""Learning, measured honestly: does GRPO with the sandbox outcome reward raise a real model's
resolve rate on one-line-bug tasks it never trained on?

    .venv/bin/python bench/learning.py [--steps N] [--model NAME|PATH] [--sft-steps N] [--lr X]
        [--tasks N] [--held-out N] [--eval-samples K] [--max-completion-tokens N] [--num-generations N]

The task family is generated here, deterministically from ``--seed``: each task is a tiny git
repository with one Python function whose body has a one-line bug (an operator flipped, a constant
off by one, a comparison reversed, the wrong builtin or index) and a pytest test that fails on it
(FAIL_TO_PASS = that test). The tasks are split by a fixed seed into a train slice (GRPO's
``rl_prompts``) and a held-out slice that no training step, lever or prompt choice ever looks at.

Resolve rate = resolved samples / judged samples on the held-out slice: ``--eval-samples`` samples
per task at GRPO's temperature, each answer judged exactly as GRPO's reward judges it
(``vtforge.trainers.rewards.SandboxReward``, the local bubblewrap backend: the SEARCH/REPLACE edit is
applied, the task's tests run, SWE-bench grading). It is measured on the starting policy (the
baseline, in the same run, with the same sampling seeds), then GRPO trains ``--steps`` steps on the
train slice with that outcome as its only reward, then the rate is measured again. With
``--sft-steps N`` the starting policy is first fine-tuned on the warehouse's ``sft_examples``: the
train slice's gold edits, or the rows of ``--sft-warehouse`` (the rate before SFT is printed too).

Prints the rate before and after, the reward mean of every GRPO step (the learning curve) and ends
with ``ratio: <after/before>``, or ``ratio: <after - before> (difference; before was 0)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from vtforge.gitrepo import commit_all, init_repo  # noqa: E402 (after the path set-up above)

# --- the task family ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BugTask:
    """One generated task: a module with one function whose ``buggy`` line should be ``fixed``."""

    task_id: str
    module: str  # file name without .py
    function: str  # the function's source with the bug (signature + one-line body)
    buggy: str  # the body line as it is
    fixed: str  # the body line as it should be
    call: str  # the call the test makes, e.g. add(2, 3)
    expected: str  # its expected value as Python source
    got: str  # what the buggy function returns for it

    @property
    def path(self) -> str:
        return f"{self.module}.py"

    @property
    def test_name(self) -> str:
        return f"tests/test_{self.module}.py::test_{self.call.split('(')[0]}"

    @property
    def issue(self) -> str:
        return f"{self.call} returns {self.got}, expected {self.expected}."

    @property
    def gold_answer(self) -> str:
        return edit_block(self.path, self.buggy, self.fixed)


def edit_block(path: str, search: str, replace: str) -> str:
    """One SEARCH/REPLACE edit in self-play's format (``vtforge.selfplay.prompts.EDIT_FORMAT``)."""
    return f"### {path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE"


def _binary(rng: random.Random) -> tuple[str, str, str, tuple, str]:
    name, op, wrong = rng.choice(
        [
            ("add", "+", "-"),
            ("add", "+", "*"),
            ("plus", "+", "-"),
            ("total", "+", "-"),
            ("subtract", "-", "+"),
            ("minus", "-", "+"),
            ("difference", "-", "+"),
            ("multiply", "*", "+"),
            ("times", "*", "-"),
            ("product", "*", "+"),
        ]
    )
    a, b = rng.randint(3, 9), rng.randint(2, 6)
    return f"def {name}(a, b):", f"    return a {wrong} b", f"    return a {op} b", (a, b), name


def _constant(rng: random.Random) -> tuple[str, str, str, tuple, str]:
    if rng.random() < 0.5:
        k = rng.randint(1, 5)
        name = f"add_{('one', 'two', 'three', 'four', 'five')[k - 1]}"
        right, wrong = f"n + {k}", f"n + {rng.choice([v for v in (k - 1, k + 1) if v > 0])}"
    else:
        k = rng.randint(2, 4)
        name = {2: "double", 3: "triple", 4: "quadruple"}[k]
        right, wrong = f"n * {k}", f"n * {rng.choice((k - 1, k + 1))}"
    return f"def {name}(n):", f"    return {wrong}", f"    return {right}", (rng.randint(2, 9),), name


def _comparison(rng: random.Random) -> tuple[str, str, str, tuple, str]:
    name, sig, right, wrong, args = rng.choice(
        [
            ("is_positive", "n", "n > 0", "n < 0", (rng.randint(1, 9),)),
            ("is_negative", "n", "n < 0", "n > 0", (-rng.randint(1, 9),)),
            ("is_greater", "a, b", "a > b", "a < b", (rng.randint(6, 9), rng.randint(1, 5))),
            ("is_smaller", "a, b", "a < b", "a > b", (rng.randint(1, 5), rng.randint(6, 9))),
            ("is_zero", "n", "n == 0", "n != 0", (0,)),
            ("is_equal", "a, b", "a == b", "a != b", (rng.randint(1, 9),) * 2),
            ("is_adult", "age", "age >= 18", "age > 18", (18,)),
            ("at_least", "n, low", "n >= low", "n > low", (rng.randint(1, 9),) * 2),
            ("is_even", "n", "n % 2 == 0", "n % 2 == 1", (2 * rng.randint(1, 5),)),
            ("is_odd", "n", "n % 2 == 1", "n % 2 == 0", (2 * rng.randint(1, 5) + 1,)),
        ]
    )
    return f"def {name}({sig}):", f"    return {wrong}", f"    return {right}", args, name


def _collection(rng: random.Random) -> tuple[str, str, str, tuple, str]:
    items = rng.sample(range(1, 10), 4)
    name, right, wrong = rng.choice(
        [
            ("largest", "max(items)", "min(items)"),
            ("smallest", "min(items)", "max(items)"),
            ("total", "sum(items)", "len(items)"),
            ("count", "len(items)", "sum(items)"),
            ("first", "items[0]", "items[-1]"),
            ("last", "items[-1]", "items[0]"),
            ("second", "items[1]", "items[2]"),
        ]
    )
    return f"def {name}(items):", f"    return {wrong}", f"    return {right}", (items,), name


FAMILIES: tuple[Callable[[random.Random], tuple[str, str, str, tuple, str]], ...] = (
    _binary,
    _constant,
    _comparison,
    _collection,
)
# module names; not "calc", which this model tends to rewrite as "math" in the edit header
MODULES = ("ops", "helpers", "mathutils", "tools", "util", "numbers", "core", "funcs")


def generate_tasks(count: int, seed: int) -> list[BugTask]:
    """``count`` distinct tasks (no two with the same function and call), deterministic in ``seed``."""
    rng = random.Random(seed)
    tasks: list[BugTask] = []
    seen: set[tuple[str, str]] = set()
    while len(tasks) < count:
        signature, buggy, fixed, args, name = FAMILIES[len(tasks) % len(FAMILIES)](rng)
        call = f"{name}({', '.join(repr(a) for a in args)})"
        if (buggy, call) in seen:
            continue
        env: dict = {}
        exec(f"{signature}\n{fixed}\n", env)  # our own generated one-liners
        expected = env[name](*args)
        exec(f"{signature}\n{buggy}\n", env)
        got = env[name](*args)
        if got == expected:
            continue
        seen.add((buggy, call))
        module = rng.choice(MODULES)
        tasks.append(
            BugTask(
                task_id=f"bug-{len(tasks):03d}-{name}",
                module=module,
                function=f"{signature}\n{buggy}\n",
                buggy=buggy,
                fixed=fixed,
                call=call,
                expected=repr(expected),
                got=repr(got),
            )
        )
    return tasks


def split_tasks(tasks: list[BugTask], held_out: int, seed: int) -> tuple[list[BugTask], list[BugTask]]:
    """(train, held-out): a fixed shuffle of ``seed``; the held-out slice is never trained or tuned on."""
    order = list(tasks)
    random.Random(seed + 1).shuffle(order)
    return order[held_out:], order[:held_out]


def make_repo(task: BugTask, root: Path) -> tuple[Path, str]:
    """A git repository with the buggy module and its failing test; (path, base commit)."""
    repo = root / task.task_id
    (repo / "tests").mkdir(parents=True)
    (repo / task.path).write_text(task.function)
    (repo / "tests" / "__init__.py").write_text("")
    name = task.call.split("(")[0]
    (repo / "tests" / f"test_{task.module}.py").write_text(
        f"from {task.module} import {name}\n\n\ndef test_{name}():\n"
        f"    assert {task.call} == {task.expected}\n"
    )
    (repo / "pyproject.toml").write_text(
        f'[project]\nname = "{task.module}"\nversion = "0.1"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["."]\n'
    )
    init_repo(repo)
    return repo, commit_all(repo, f"{task.task_id}: one-line bug")


# --- the prompt --------------------------------------------------------------------------------

SYSTEM = (
    "You fix a one-line bug in a Python file. Reply with one SEARCH/REPLACE edit and nothing else: "
    "the SEARCH part is the buggy line copied exactly, the REPLACE part is the fixed line."
)
# two worked examples (not from the task family), as chat turns: a 135M model follows the edit
# format from examples far more often than from the instruction alone
EXAMPLES = (
    (
        "shapes.py",
        "def area(width, height):\n    return width + height\n",
        "area(3, 4) returns 7, expected 12.",
        "    return width + height",
        "    return width * height",
    ),
    (
        "lists.py",
        "def is_empty(items):\n    return len(items) > 0\n",
        "is_empty([]) returns False, expected True.",
        "    return len(items) > 0",
        "    return len(items) == 0",
    ),
)


def user_turn(path: str, function: str, issue: str, line: str) -> str:
    """The file, the failing call and the buggy line (localization is given: GRPO trains the edit)."""
    return f"File {path}:\n```python\n{function}```\nBug: {issue}\nBuggy line:\n{line}"


def messages(task: BugTask) -> list[dict[str, str]]:
    """System, two worked examples and the task, asking for the edit format GRPO's reward parses."""
    chat = [{"role": "system", "content": SYSTEM}]
    for path, function, issue, buggy, fixed in EXAMPLES:
        chat.append({"role": "user", "content": user_turn(path, function, issue, buggy)})
        chat.append({"role": "assistant", "content": edit_block(path, buggy, fixed)})
    chat.append({"role": "user", "content": user_turn(task.path, task.function, task.issue, task.buggy)})
    return chat


# --- the workspace, the warehouse and the measurement ------------------------------------------


def write_levers(ws: Path, args: argparse.Namespace) -> None:
    """The bench's own workspace: its levers, a throw-away data dir, the local sandbox."""
    (ws / "vtcode.toml").write_text(
        '[forge.warehouse]\ndata_dir = ".forge"\n\n'
        f"[forge.train]\nseed = {args.seed}\nnum_generations = {args.num_generations}\n"
        # one prompt's group per forward/backward, accumulated over the step's prompts: the same
        # update as all groups at once, at a fraction of the activation memory (~14 GB for 2 x 6)
        f"grpo_prompts_per_step = 1\ngradient_accumulation_steps = {args.prompts_per_step}\n"
        f"grpo_temperature = {args.temperature}\n"
        f"max_completion_tokens = {args.max_completion_tokens}\nsft_batch_size = 4\n"
        "save_steps = 100000\nsave_total_limit = 1\n\n"
        '[forge.sandbox]\nbackend = "local"\nconcurrency = 2\n\n'
        # SFT packs rows up to the context budget: at the model's 8,192 positions, 4 packed rows'
        # logits alone (49,152-token vocabulary, fp32) take ~6 GB and SFT ran out of 24 GB; the
        # prompts here are ~400 tokens, so 1,024 positions change nothing else
        "[forge.context]\ntrain_tokens = 1024\n\n"
        "[forge.selfplay]\nflaky_reruns = 0\n\n"  # the generated tests are deterministic
        "[forge.curriculum]\nreplay_mix_fraction = 0.0\neasy_keep_fraction = 0.0\n"
    )


def task_row(task: BugTask, repo: Path, commit: str) -> dict:
    """What ``SandboxReward`` (and ``rl_prompts``) needs to judge an answer to ``task``."""
    return {
        "task_id": task.task_id,
        "repo_dir": str(repo),
        "base_commit": commit,
        "fail_to_pass": [task.test_name],
        "pass_to_pass": [],
        "messages": messages(task),
    }


def fill_warehouse(cfg, train: list[tuple[BugTask, dict]], sft_warehouse: Path | None) -> None:
    """``rl_prompts`` = the train slice (no measured baseline: drawn with ``include_unmeasured``);
    ``sft_examples`` = the train slice's gold edits, or another warehouse's rows."""
    import duckdb

    from vtforge.fixtures.warehouse import create_tables

    cfg.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(cfg.duckdb_path))
    create_tables(con)
    con.execute("ALTER TABLE rl_prompts ADD COLUMN repo_dir VARCHAR")
    con.execute("ALTER TABLE rl_prompts ADD COLUMN test_patch VARCHAR")
    for task, row in train:
        prompt = "\n\n".join(m["content"] for m in row["messages"])
        con.execute(
            "INSERT INTO rl_prompts VALUES (?, ?, ?, 'bench/one-line-bugs', ?, ?, [], ?, NULL, NULL, "
            "'train', ?, NULL)",
            [
                task.task_id,
                row["messages"],
                prompt,
                row["base_commit"],
                row["fail_to_pass"],
                [task.path],
                row["repo_dir"],
            ],
        )
    if sft_warehouse is not None:
        quoted = str(sft_warehouse).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS source (READ_ONLY)")
        con.execute("INSERT INTO sft_examples BY NAME SELECT * FROM source.sft_examples")
        con.execute("DETACH source")
    else:
        for task, row in train:
            chat = [*row["messages"], {"role": "assistant", "content": task.gold_answer}]
            con.execute(
                "INSERT INTO sft_examples VALUES (?, ?, 'bugfixer', ?, ?, ?, 'bench-gold', true, 0, 'train', "
                "'bench')",
                [f"gold-{task.task_id}", task.task_id, chat, chat[-2]["content"], task.gold_answer],
            )
    con.close()


@dataclass
class Rate:
    """Held-out outcome of one policy: resolved / judged samples, plus how many answers parsed."""

    resolved: int
    judged: int
    parsed: int
    samples: int
    seconds: float
    statuses: dict[str, int]  # parse status of the answers (ok = an applicable edit)

    @property
    def value(self) -> float:
        return self.resolved / self.judged if self.judged else 0.0

    @property
    def stderr(self) -> float:
        """Binomial standard error of ``value`` (samples of one task are not independent: a floor)."""
        return (self.value * (1 - self.value) / self.judged) ** 0.5 if self.judged else 0.0

    def line(self) -> str:
        answers = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items(), key=lambda kv: -kv[1]))
        return (
            f"{self.value:.3f} ± {self.stderr:.3f} ({self.resolved}/{self.judged} resolved; "
            f"{self.parsed}/{self.samples} answers held an applicable edit; {self.seconds:.0f} s)\n"
            f"    answers: {answers}"
        )


def resolve_rate(folder: Path, rows: list[dict], reward, args: argparse.Namespace) -> Rate:
    """Sample ``--eval-samples`` answers per held-out task as GRPO samples them (chat template,
    temperature, no top-k/top-p, ``max_completion_tokens``) and judge each with ``reward``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    torch.manual_seed(args.seed)  # the same sampling noise for every policy measured
    texts: list[str] = []
    per_batch = max(1, args.eval_batch // args.eval_samples)
    for start in range(0, len(rows), per_batch):
        chunk = rows[start : start + per_batch]
        prompts = [
            tok.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True) for r in chunk
        ]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=args.temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=args.max_completion_tokens,
                num_return_sequences=args.eval_samples,
                pad_token_id=tok.pad_token_id,
            )
        width = enc["input_ids"].shape[1]
        texts += [tok.decode(o[width:], skip_special_tokens=True) for o in out]
    judged_rows = [row for row in rows for _ in range(args.eval_samples)]
    values = reward.many(texts, judged_rows)
    statuses = Counter(reward.parse(t, r)[1] for t, r in zip(texts, judged_rows, strict=True))
    scored = [v for v in values if v is not None]
    del model
    return Rate(
        resolved=int(sum(scored)),
        judged=len(scored),
        parsed=statuses.get("ok", 0),
        samples=len(texts),
        seconds=time.perf_counter() - started,
        statuses=dict(statuses),
    )


@dataclass
class Setup:
    """A bench's starting model, throw-away workspace and task slices (``bench/recipe.py`` too)."""

    start: Path  # the starting model's Hugging Face folder
    ws: Path
    cfg: object
    tasks: list[BugTask]
    train: list[BugTask]
    held_out: list[BugTask]
    train_rows: list[tuple[BugTask, dict]]
    held_rows: list[dict]


def ratio_line(ours: float, baseline: float, what: str) -> str:
    """The bench's last line: ``ratio: ours/baseline``, or the difference when the baseline is 0."""
    if baseline > 0:
        return f"ratio: {ours / baseline:.2f} (held-out resolve rate {what}; {ours:.3f} vs {baseline:.3f})"
    return f"ratio: {ours - baseline:.3f} (difference of the held-out resolve rates {what}; the second was 0)"


def grpo_options(args: argparse.Namespace, start: Path, arm: str | None = None):
    """GRPO from ``start`` with the sandbox outcome reward and the bench's levers; a measurement, not a
    promotion, so it starts from an SFT policy as it is (``force``)."""
    from vtforge.trainers.grpo import GrpoOptions

    label = f"{arm} " if arm else ""

    def step_line(event: dict) -> None:
        print(
            f"  {label}grpo step {event['step']}: reward mean {event['reward_mean']:.3f}, "
            f"loss {event['loss']:.4f}",
            flush=True,
        )

    return GrpoOptions(
        model=str(start),
        max_steps=args.steps,
        reward="sandbox",
        learning_rate=args.lr,
        max_completion_tokens=args.max_completion_tokens,
        num_generations=args.num_generations,
        emit_events=False,
        include_unmeasured=True,
        on_step=step_line,
        arm=arm,
        force=True,
    )


def add_arguments(parser: argparse.ArgumentParser, *, steps_help: str, sft_steps: int) -> None:
    """The levers both benches take (``bench/recipe.py`` too): model, budgets, tasks, sampling."""
    parser.add_argument("--model", default="smollm2-135m", help="registry name or local folder")
    parser.add_argument("--steps", type=int, default=10, help=steps_help)
    parser.add_argument("--lr", type=float, default=1e-5, help="GRPO learning rate")
    parser.add_argument("--sft-steps", type=int, default=sft_steps, help="SFT optimiser steps (0: none)")
    parser.add_argument("--sft-lr", type=float, default=2e-5)
    parser.add_argument("--tasks", type=int, default=48, help="tasks generated (train + held out)")
    parser.add_argument("--held-out", type=int, default=16, help="tasks held out for the measurement")
    parser.add_argument("--eval-samples", type=int, default=4, help="samples per held-out task")
    parser.add_argument("--eval-batch", type=int, default=32, help="sequences generated together")
    parser.add_argument("--num-generations", type=int, default=6, help="GRPO group size")
    parser.add_argument("--prompts-per-step", type=int, default=2, help="GRPO prompts per step")
    parser.add_argument("--max-completion-tokens", type=int, default=64)
    parser.add_argument(
        "--temperature", type=float, default=0.7, help="sampling, in GRPO and the measurement"
    )
    parser.add_argument("--seed", type=int, default=0, help="tasks, split and sampling")


def set_up(args: argparse.Namespace, prefix: str) -> Setup | None:
    """Check the sandbox, resolve ``--model``, generate and split the tasks, build their repositories
    in a new workspace (None, after one line on stderr, when something needed is missing)."""
    from vtforge.config import load_config
    from vtforge.models import ModelError
    from vtforge.trainers.common import model_folder

    if shutil.which("bwrap") is None:
        print(
            "bubblewrap (bwrap) is needed: the reward runs every answer in the local sandbox", file=sys.stderr
        )
        return None
    try:
        start = model_folder(load_config(cwd=REPO_ROOT), args.model)  # converted once under the data dir
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated run still removes its workspace
    tasks = generate_tasks(args.tasks, args.seed)
    train, held_out = split_tasks(tasks, args.held_out, args.seed)
    ws = Path(tempfile.mkdtemp(prefix=prefix))
    write_levers(ws, args)
    cfg = load_config(cwd=ws)
    repos = ws / "repos"
    train_rows = [(t, task_row(t, *make_repo(t, repos))) for t in train]
    held_rows = [task_row(t, *make_repo(t, repos)) for t in held_out]
    return Setup(start, ws, cfg, tasks, train, held_out, train_rows, held_rows)


def main(args: argparse.Namespace) -> int:
    from vtforge.trainers.grpo import run_grpo
    from vtforge.trainers.rewards import SandboxReward
    from vtforge.trainers.sft import SftOptions, run_sft

    began = time.perf_counter()
    setup = set_up(args, "vtforge-bench-learning-")
    if setup is None:
        return 2
    start, ws, cfg = setup.start, setup.ws, setup.cfg
    tasks, train, held_out, held_rows = setup.tasks, setup.train, setup.held_out, setup.held_rows
    try:
        fill_warehouse(
            cfg, setup.train_rows, Path(args.sft_warehouse).resolve() if args.sft_warehouse else None
        )
        print(
            f"model {args.model} ({start}); {len(tasks)} one-line-bug tasks (seed {args.seed}): "
            f"{len(train)} train, {len(held_out)} held out; {args.eval_samples} samples per held-out task, "
            f"temperature {args.temperature}, {args.max_completion_tokens} completion tokens",
            flush=True,
        )
        reward = SandboxReward(cfg)
        try:
            base = resolve_rate(start, held_rows, reward, args)
            print(f"held-out resolve rate, {args.model}: {base.line()}", flush=True)
            before, policy = base, start
            if args.sft_steps:
                sft = run_sft(
                    cfg,
                    SftOptions(
                        model=str(start),
                        max_steps=args.sft_steps,
                        learning_rate=args.sft_lr,
                        emit_events=False,
                    ),
                )
                policy = Path(sft["final"])
                print(
                    f"SFT: {sft['steps']} steps on {sft['rows']} sft_examples rows, loss "
                    f"{sft['first_loss']:.3f} -> {sft['last_loss']:.3f} ({sft['seconds']:.0f} s)",
                    flush=True,
                )
                before = resolve_rate(policy, held_rows, reward, args)
                print(f"held-out resolve rate after SFT (GRPO's start): {before.line()}", flush=True)

            grpo = run_grpo(cfg, grpo_options(args, policy))
            after = resolve_rate(Path(grpo["final"]), held_rows, reward, args)
        finally:
            reward.close()
        curve = grpo["reward_means"]
        print(f"held-out resolve rate after {grpo['steps']} GRPO steps: {after.line()}")
        print(
            f"GRPO: {grpo['seconds']:.0f} s ({grpo['seconds'] / max(grpo['steps'], 1):.0f} s/step), "
            f"lr {args.lr}, {args.prompts_per_step} prompts x "
            f"{args.num_generations} samples per step, zero-variance groups "
            f"{grpo['filtering']['zero_variance_groups']}/{grpo['filtering']['groups']}"
        )
        print("learning curve (train reward mean per step): " + " ".join(f"{r:.2f}" for r in curve))
        print(
            json.dumps(
                {
                    "before": before.value,
                    "after": after.value,
                    "base": base.value,
                    "curve": curve,
                    "wall_s": round(time.perf_counter() - began),
                }
            )
        )
        print(f"wall time {time.perf_counter() - began:.0f} s")
        print(ratio_line(after.value, before.value, "after GRPO / before"))
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser, steps_help="GRPO optimiser steps", sft_steps=0)
    parser.add_argument(
        "--sft-warehouse", help="SFT on this warehouse's sft_examples (default: train gold edits)"
    )
    sys.exit(main(parser.parse_args()))
