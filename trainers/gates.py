"""Promotion gates: may a policy move on? Evaluated from the warehouse's ``curriculum_gates`` telemetry.

The warehouse computes each gate's value per policy version (and stage) from what the policy did:
source-file localization accuracy, patch acceptance per BugFixer sample, and the share of sampled
tasks with a generated test that fails before the fix and passes after it. The thresholds are ours
(``forge.curriculum.gates``), re-applied here so that changing one in ``vtcode.toml`` takes effect
without re-materialising; each gate is compared the way the warehouse compares it (its
``comparison`` column: ``>`` for fail_before_fix_rate, ``>=`` for the others; ``COMPARISONS`` is
the fallback for a table without that column). A gate with no telemetry fails: a policy is never
promoted on missing evidence.

This module imports only duckdb, so a Dagster asset check can call it cheaply::

    from vtforge.trainers.gates import evaluate_gates
    report = evaluate_gates(con, cfg.forge.curriculum.gates, policy_version)
    AssetCheckResult(passed=report.passed, metadata=report.as_metadata())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from vtforge.config import Config, GatesConfig

GATES = ("localization_accuracy", "patch_acceptance", "fail_before_fix_rate")
TABLE = "curriculum_gates"
# How each gate's value meets its threshold, as warehouse/sql/curriculum_gates.sql writes it (the
# recipe asks for "> 80%" of tasks with a failing-before-fix test); used when the table has no
# ``comparison`` column.
COMPARISONS = {"localization_accuracy": ">=", "patch_acceptance": ">=", "fail_before_fix_rate": ">"}
DEFAULT_COMPARISON = ">="


class GateDataError(RuntimeError):
    """The warehouse has no ``curriculum_gates`` table, or no rows at all."""


@dataclass(frozen=True)
class GateResult:
    gate: str
    threshold: float
    value: float | None
    passed: bool
    stage: str | None = None
    note: str = ""
    comparison: str = DEFAULT_COMPARISON


@dataclass
class GateReport:
    policy_version: str | None
    results: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def as_metadata(self) -> dict[str, Any]:
        """Flat, JSON-able metadata (for a Dagster ``AssetCheckResult``)."""
        out: dict[str, Any] = {"policy_version": self.policy_version or ""}
        for r in self.results:
            key = r.gate if r.stage is None else f"{r.gate}[{r.stage}]"
            out[key] = {
                "value": r.value,
                "threshold": r.threshold,
                "comparison": r.comparison,
                "passed": r.passed,
            }
        return out


def _thresholds(gates_cfg: GatesConfig) -> dict[str, float]:
    if isinstance(gates_cfg, dict):
        return {k: float(v) for k, v in gates_cfg.items()}
    return {g: float(getattr(gates_cfg, g)) for g in GATES}


def passes(value: float | None, threshold: float | None, comparison: str) -> bool:
    """Does ``value`` meet ``threshold`` under ``comparison`` (``>`` or ``>=``)? Missing evidence fails."""
    if value is None or threshold is None:
        return False
    if comparison == ">":
        return float(value) > float(threshold)
    if comparison == ">=":
        return float(value) >= float(threshold)
    raise GateDataError(f"{TABLE}.comparison: unknown comparison {comparison!r} (expected '>' or '>=')")


def _columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [TABLE]
        ).fetchall()
    }


def latest_policy_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The newest policy version in the table: by the warehouse's ``version_index`` when it has one,
    else by the UTC time our versions embed (``grpo-20261128T010203Z-1a2b``)."""
    if "version_index" in _columns(con):
        row = con.execute(
            f"SELECT policy_version FROM {TABLE} WHERE policy_version IS NOT NULL "
            "ORDER BY version_index DESC NULLS LAST, policy_version DESC LIMIT 1"
        ).fetchone()
        return row[0] if row else None
    rows = con.execute(
        f"SELECT DISTINCT policy_version FROM {TABLE} WHERE policy_version IS NOT NULL"
    ).fetchall()
    versions = [r[0] for r in rows]
    if not versions:
        return None

    def key(version: str) -> tuple[str, str]:
        parts = version.split("-")
        stamp = next((p for p in parts if len(p) == 16 and p.endswith("Z") and "T" in p), "")
        return stamp, version

    return max(versions, key=key)


def evaluate_gates(
    con: duckdb.DuckDBPyConnection, gates_cfg: GatesConfig, policy_version: str | None = None
) -> GateReport:
    """Each configured gate for ``policy_version`` (default: the newest) with value, threshold, pass."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if TABLE not in tables:
        raise GateDataError(f"the warehouse has no {TABLE} table (run `vtforge materialize`)")
    if policy_version is None:
        policy_version = latest_policy_version(con)
    thresholds = _thresholds(gates_cfg)
    comparison_sql = "comparison" if "comparison" in _columns(con) else "NULL"
    rows = con.execute(
        f"SELECT gate, value, stage, threshold, {comparison_sql} FROM {TABLE} "
        "WHERE policy_version IS NOT DISTINCT FROM ? ORDER BY gate, stage",
        [policy_version],
    ).fetchall()
    by_gate: dict[str, list[tuple]] = {}
    for gate, value, stage, threshold, comparison in rows:
        by_gate.setdefault(gate, []).append((value, stage, threshold, comparison))

    def comparison_of(gate: str, found: str | None) -> str:
        return found or COMPARISONS.get(gate, DEFAULT_COMPARISON)

    report = GateReport(policy_version)
    for gate, threshold in thresholds.items():
        found = by_gate.pop(gate, [])
        if not found:
            report.results.append(
                GateResult(
                    gate, threshold, None, False, note="no telemetry", comparison=comparison_of(gate, None)
                )
            )
        for value, stage, _, comparison in found:
            how = comparison_of(gate, comparison)
            report.results.append(
                GateResult(
                    gate,
                    threshold,
                    None if value is None else float(value),
                    passes(value, threshold, how),
                    stage,
                    "" if value is not None else "no value",
                    how,
                )
            )
    for gate, found in sorted(by_gate.items()):  # gates the warehouse knows and our config does not
        for value, stage, threshold, comparison in found:
            how = comparison_of(gate, comparison)
            report.results.append(
                GateResult(
                    gate,
                    float(threshold or 0.0),
                    value,
                    passes(value, threshold, how),
                    stage,
                    "threshold from warehouse",
                    how,
                )
            )
    return report


def check_gates(cfg: Config, policy_version: str | None = None) -> GateReport:
    """``evaluate_gates`` on the configured warehouse, opened read-only."""
    path = cfg.duckdb_path
    if not path.is_file():
        raise GateDataError(f"warehouse not found: {path} (run `vtforge materialize` first)")
    con = duckdb.connect(str(path), read_only=True)
    try:
        return evaluate_gates(con, cfg.forge.curriculum.gates, policy_version)
    finally:
        con.close()
