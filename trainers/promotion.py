"""Gates that promote: a decision per policy, recorded as a ``policy_promoted`` event.

``vtforge gates --promote`` evaluates the gates (``vtforge.trainers.gates``) and emits the decision:
``promoted`` when every gate passed, else ``rejected`` with a reason naming each failed gate and
by how much it missed. GRPO starts only from a promoted policy (``require_promotion``, read from
the warehouse's ``policy_promotions``); a base model (a registry name, a folder not written by our
trainers, the tiny model) has no gates and needs none. ``--force`` trains from a rejected or
undecided policy anyway and records that as a ``forced`` decision naming the run that forced it.
"""

from __future__ import annotations

import uuid
from typing import Any

from vtforge.schemas import new_event
from vtforge.trainers.gates import GateReport, GateResult
from vtforge.warehouse.promotions import Promotion, current_promotion

PRODUCER = "vtforge.trainers.gates"
EVENT = "policy_promoted"


class NotPromoted(RuntimeError):
    """GRPO was asked to start from a policy that is not promoted (the message says why)."""


def shortfall(result: GateResult) -> str:
    """One failed gate in words: ``localization_accuracy 0.420, needs >= 0.600 (short by 0.180)``."""
    name = result.gate if result.stage is None else f"{result.gate}[{result.stage}]"
    if result.value is None:
        return f"{name}: {result.note or 'no value'} (needs {result.comparison} {result.threshold:.3f})"
    short = result.threshold - result.value
    by = f"short by {short:.3f}" if short > 0 else "equal to the threshold; needs more"
    return f"{name} {result.value:.3f}, needs {result.comparison} {result.threshold:.3f} ({by})"


def decide(report: GateReport) -> tuple[str, str]:
    """(decision, reason) for a gate report."""
    if report.passed:
        return "promoted", "every gate passed"
    if not report.results:
        return "rejected", "no gates evaluated"
    return "rejected", "; ".join(shortfall(r) for r in report.failed)


def gate_values(report: GateReport) -> list[dict[str, Any]]:
    return [
        {
            "gate": r.gate,
            "stage": r.stage,
            "value": r.value,
            "threshold": float(r.threshold),
            "comparison": r.comparison,
            "passed": bool(r.passed),
            "note": r.note,
        }
        for r in report.results
    ]


def promotion_event(
    report: GateReport,
    *,
    decision: str | None = None,
    reason: str | None = None,
    forced_by: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The ``policy_promoted`` event of ``report`` (decision and reason from ``decide`` unless given)."""
    if report.policy_version is None:
        raise ValueError("a promotion needs a policy version (the gates found none)")
    decided, why = decide(report)
    decision = decision or decided
    payload = {
        "promotion_id": uuid.uuid4().hex,  # each decision is its own (a re-run of the gates decides anew)
        "policy_version": report.policy_version,
        "decision": decision,
        "passed": report.passed,
        "reason": reason or why,
        "forced_by": forced_by,
        "gates": gate_values(report),
    }
    return new_event(EVENT, payload, producer=PRODUCER, stage="rl", run_id=run_id)


def require_promotion(con: Any, policy_version: str) -> Promotion:
    """``policy_version``'s promotion, or ``NotPromoted`` saying which gate failed and by how much."""
    found = current_promotion(con, policy_version)
    if found is None:
        raise NotPromoted(
            f"policy {policy_version} has no promotion decision: run `vtforge gates --promote "
            f"--policy-version {policy_version}` and `vtforge materialize`, or pass --force"
        )
    if not found.promoted:
        raise NotPromoted(
            f"policy {policy_version} was not promoted ({found.reason}); improve it or pass --force"
        )
    return found
