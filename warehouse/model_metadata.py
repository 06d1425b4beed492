"""Extra metadata a model's asset reports after it is built (shown in the Dagster UI).

``rl_prompts`` reports what it left out: how many tasks the execution-outcome reward cannot run on,
how many per reason, and their ids (from ``rl_prompts_excluded``). ``leaderboard`` reports itself
as a markdown table (a ``Markdown`` value, which the Dagster layer renders as markdown).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import duckdb

MAX_NAMES = 500  # task ids listed in the metadata at most (the count is always exact)


class Markdown(str):
    """Metadata text to render as markdown."""


def rl_prompts_metadata(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    rows = con.execute("SELECT task_id, reason FROM rl_prompts_excluded ORDER BY task_id").fetchall()
    return {
        "excluded_tasks": len(rows),
        "excluded_by_reason": dict(sorted(Counter(reason for _, reason in rows).items())),
        "excluded_task_ids": [task_id for task_id, _ in rows[:MAX_NAMES]],
    }


def leaderboard_markdown(con: duckdb.DuckDBPyConnection) -> str:
    """``leaderboard`` as a markdown table: entry × metric, value [95% interval] (n)."""
    rows = con.execute(
        "SELECT suite, metric, entry, policy_version, value, ci_low, ci_high, n FROM leaderboard "
        "ORDER BY suite, metric, value DESC NULLS LAST, entry"
    ).fetchall()
    if not rows:
        return "_no skill evaluations yet (`vtforge evaluate`, or train with `--eval-suite`)_"
    lines = ["| suite | metric | entry | policy | value [95% CI] | n |", "|---|---|---|---|---|---|"]
    for suite, metric, entry, policy, value, low, high, n in rows:
        shown = "—" if value is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"
        lines.append(f"| {suite} | {metric} | {entry} | {policy} | {shown} | {n} |")
    return "\n".join(lines)


def leaderboard_metadata(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    return {"leaderboard": Markdown(leaderboard_markdown(con))}


HOOKS: dict[str, Callable[[duckdb.DuckDBPyConnection], dict[str, Any]]] = {
    "rl_prompts": rl_prompts_metadata,
    "leaderboard": leaderboard_metadata,
}


def model_metadata(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    """The model's extra metadata (empty for models without a hook)."""
    hook = HOOKS.get(name)
    return hook(con) if hook is not None else {}
