"""DuckDB over the landing files: what live sessions produced (for the CLI and tests).

Each event is counted once (by ``event_id``): a replay or a repeated delivery lands the same id
again, and the warehouse deduplicates the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb


def _glob(landing: Path, event_type: str) -> str | None:
    folder = landing / event_type
    if not folder.exists() or not any(folder.rglob("*.parquet")):
        return None
    return str(folder / "**" / "*.parquet")


def query(landing: Path, event_type: str, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` with ``{t}`` standing for the deduplicated events of ``event_type``."""
    pattern = _glob(landing, event_type)
    if pattern is None:
        return []
    table = (
        f"(SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, union_by_name = true) "
        "QUALIFY row_number() OVER (PARTITION BY envelope.event_id ORDER BY envelope.occurred_at) = 1)"
    )
    with duckdb.connect() as con:
        return con.execute(sql.format(t=table)).fetchall()


def unknown_records(landing: Path) -> list[tuple[Any, ...]]:
    """(type, schema_version, records, sessions) of the records kept as kind 'other'."""
    return query(
        landing,
        "agent_step",
        "SELECT tool_name, coalesce(source_schema_version, ''), count(*), count(DISTINCT rollout_id) "
        "FROM {t} WHERE kind = 'other' GROUP BY ALL ORDER BY 3 DESC, 1",
    )


def latest_rollouts(landing: Path) -> list[tuple[Any, ...]]:
    """The latest snapshot of each live rollout: (rollout_id, session, num_turns, prompt, completion,
    cached, outcome, final)."""
    return query(
        landing,
        "rollout",
        "SELECT rollout_id, envelope.session_id, num_turns, prompt_tokens, completion_tokens, "
        "cached_prompt_tokens, outcome, envelope.attributes['final'] "
        "FROM {t} WHERE envelope.producer = 'vtforge.vtcode' "
        "QUALIFY row_number() OVER (PARTITION BY rollout_id "
        "ORDER BY num_turns DESC, envelope.attributes['final'] DESC, "
        "cast(envelope.attributes['snapshot'] AS INTEGER) DESC) = 1 ORDER BY 2",
    )
