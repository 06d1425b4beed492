"""A small warehouse with the trainers' input tables, for tests, the benchmark and the GPU smoke run.

The column contracts are the warehouse's (``sft_examples``, ``rl_prompts``, ``replay_buffer``,
``curriculum_gates``); the rows are generated, deterministic and clearly synthetic.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb

MESSAGE = "STRUCT(role VARCHAR, content VARCHAR)"

DDL = {
    "sft_examples": f"""CREATE TABLE IF NOT EXISTS sft_examples (
        example_id VARCHAR, task_id VARCHAR, role VARCHAR, messages {MESSAGE}[], prompt VARCHAR,
        completion VARCHAR, source VARCHAR, synthetic BOOLEAN, upsample_index INTEGER, split VARCHAR,
        policy_version VARCHAR)""",
    "rl_prompts": f"""CREATE TABLE IF NOT EXISTS rl_prompts (
        task_id VARCHAR, prompt VARCHAR, messages {MESSAGE}[], repo VARCHAR, base_commit VARCHAR,
        fail_to_pass VARCHAR[], pass_to_pass VARCHAR[], localized_files VARCHAR[],
        baseline_success_rate DOUBLE, difficulty_bucket VARCHAR, split VARCHAR)""",
    "replay_buffer": """CREATE TABLE IF NOT EXISTS replay_buffer (
        task_id VARCHAR, rollout_id VARCHAR, policy_version VARCHAR, prompt VARCHAR, completion VARCHAR,
        reward DOUBLE, rank INTEGER, staleness INTEGER, occurred_at TIMESTAMP)""",
    "curriculum_gates": """CREATE TABLE IF NOT EXISTS curriculum_gates (
        gate VARCHAR, threshold DOUBLE, value DOUBLE, passed BOOLEAN, policy_version VARCHAR,
        stage VARCHAR)""",
}

_WORDS = [
    "parse",
    "config",
    "value",
    "list",
    "index",
    "empty",
    "return",
    "raise",
    "error",
    "test",
    "fix",
    "file",
    "module",
    "call",
    "path",
]


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in DDL.values():
        con.execute(ddl)


def _issue(rng: random.Random, i: int, words: int) -> str:
    body = " ".join(rng.choice(_WORDS) for _ in range(words))
    return f"Issue {i}: {body}"


def _patch(i: int) -> str:
    return (
        f"<think>The bug is in module_{i}.py: the empty case is not handled.</think>\n"
        f"diff --git a/module_{i}.py b/module_{i}.py\n--- a/module_{i}.py\n+++ b/module_{i}.py\n"
        f"@@ -1,2 +1,2 @@\n-    return items[0]\n+    return items[0] if items else None\n"
    )


def sft_rows(
    n: int, *, seed: int = 0, context_words: int = 12, split: str = "train", policy_version: str = "seed"
) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        role = ("bugfixer", "localizer", "testwriter")[i % 3]
        prompt = _issue(rng, i, context_words)
        completion = (
            _patch(i) if role != "localizer" else f"<think>Look at the traceback.</think>\nmodule_{i}.py"
        )
        messages = [
            {"role": "system", "content": f"You are the {role}."},
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": completion},
        ]
        rows.append(
            (
                f"ex{i:06d}",
                f"task{i % 50:04d}",
                role,
                messages,
                prompt,
                completion,
                "synthetic",
                True,
                0,
                split,
                policy_version,
            )
        )
    return rows


def rl_rows(buckets: dict[str, int], *, seed: int = 0, split: str = "train") -> list[tuple]:
    rng = random.Random(seed)
    rate = {"easy": 0.8, "medium": 0.3, "hard": 0.05}
    rows, i = [], 0
    for bucket, count in buckets.items():
        for _ in range(count):
            prompt = _issue(rng, i, 8)
            rows.append(
                (
                    f"{bucket}{i:04d}",
                    prompt,
                    [{"role": "user", "content": prompt}],
                    "local/demo",
                    "0" * 40,
                    [f"tests/test_{i}.py::test_fix"],
                    [],
                    [f"module_{i}.py"],
                    rate[bucket],
                    bucket,
                    split,
                )
            )
            i += 1
    return rows


def fill(
    con: duckdb.DuckDBPyConnection,
    *,
    sft: int = 0,
    rl: dict[str, int] | None = None,
    replay: int = 0,
    seed: int = 0,
) -> None:
    """Create the tables and append generated rows."""
    create_tables(con)
    if sft:
        con.executemany(
            "INSERT INTO sft_examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", sft_rows(sft, seed=seed)
        )
    if rl:
        con.executemany(
            "INSERT INTO rl_prompts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rl_rows(rl, seed=seed)
        )
    if replay:
        prompts = con.execute("SELECT task_id, prompt FROM rl_prompts ORDER BY task_id").fetchall()
        rows = []
        for k in range(replay):
            task_id, prompt = prompts[k % len(prompts)] if prompts else (f"task{k:04d}", f"Issue {k}")
            rows.append((task_id, f"r{k:05d}", "seed", prompt, _patch(k), 1.0, k % 4 + 1, 0))
        con.executemany("INSERT INTO replay_buffer VALUES (?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)", rows)


def build_warehouse(path: Path, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        fill(con, **kwargs)  # type: ignore[arg-type]
    finally:
        con.close()
    return path
