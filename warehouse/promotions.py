"""Which policy may GRPO start from: the promotion decisions in ``policy_promotions``.

A policy version is promoted when its current (latest promoted/rejected) decision is ``promoted``.
``vtforge gates --promote`` records decisions as ``policy_promoted`` events; the warehouse keeps
them, and the trainers and the Dagster asset check read them here (both sit above the warehouse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from vtforge.warehouse.checks import CheckOutcome

TABLE = "policy_promotions"


@dataclass(frozen=True)
class Promotion:
    """A policy's current verdict."""

    policy_version: str
    decision: str  # promoted | rejected
    reason: str
    gates: list[dict[str, Any]]
    occurred_at: Any

    @property
    def promoted(self) -> bool:
        return self.decision == "promoted"


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return bool(con.execute(sql, [name]).fetchone()[0])


def current_promotion(con: duckdb.DuckDBPyConnection, policy_version: str) -> Promotion | None:
    """``policy_version``'s current promoted/rejected decision, or None when it has none."""
    if not _has_table(con, TABLE):
        return None
    row = con.execute(
        f"SELECT policy_version, decision, reason, gates, occurred_at FROM {TABLE} "
        "WHERE policy_version = ? AND current",
        [policy_version],
    ).fetchone()
    return Promotion(*row) if row else None


def latest_sft_policy(con: duckdb.DuckDBPyConnection) -> str | None:
    """The newest SFT policy version with training steps (GRPO's default start)."""
    if not _has_table(con, "training_steps"):
        return None
    row = con.execute(
        "SELECT policy_version FROM training_steps WHERE trainer = 'sft' "
        "GROUP BY policy_version ORDER BY max(occurred_at) DESC, policy_version DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def start_policy_promoted(con: duckdb.DuckDBPyConnection, policy_version: str | None = None) -> CheckOutcome:
    """GRPO's start (``policy_version``, else the newest SFT policy) is promoted; with no SFT policy
    at all GRPO starts from a base model, which needs no promotion."""
    version = policy_version or latest_sft_policy(con)
    if version is None:
        return CheckOutcome(True, "no SFT policy: GRPO starts from a base model", {"policy_version": ""})
    found = current_promotion(con, version)
    if found is None:
        return CheckOutcome(
            False,
            f"policy {version} has no promotion decision (run `vtforge gates --promote`)",
            {"policy_version": version, "decision": ""},
        )
    return CheckOutcome(
        found.promoted,
        f"policy {version} {found.decision}: {found.reason}",
        {"policy_version": version, "decision": found.decision},
    )
