"""Extra metadata a model's asset reports after it is built (shown in the Dagster UI).

``rl_prompts`` reports what it left out: how many tasks the execution-outcome reward cannot run on,
how many per reason, and their ids (from ``rl_prompts_excluded``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import duckdb

MAX_NAMES = 500  # task ids listed in the metadata at most (the count is always exact)


def rl_prompts_metadata(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    rows = con.execute("SELECT task_id, reason FROM rl_prompts_excluded ORDER BY task_id").fetchall()
    return {
        "excluded_tasks": len(rows),
        "excluded_by_reason": dict(sorted(Counter(reason for _, reason in rows).items())),
        "excluded_task_ids": [task_id for task_id, _ in rows[:MAX_NAMES]],
    }


HOOKS: dict[str, Callable[[duckdb.DuckDBPyConnection], dict[str, Any]]] = {
    "rl_prompts": rl_prompts_metadata,
}


def model_metadata(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    """The model's extra metadata (empty for models without a hook)."""
    hook = HOOKS.get(name)
    return hook(con) if hook is not None else {}
