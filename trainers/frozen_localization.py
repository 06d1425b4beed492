"""Frozen localization for RL: the edit policy trains on a named frozen policy's files, not its own.

Kimi-Dev's Stage 2 freezes localization and trains only the code edit. Before GRPO,
``freeze_localization(cfg, P)`` takes, for every task in ``rl_prompts``, the source-file
localization policy ``P`` (the pre-RL policy) produced — its greedy sample first, then the latest
— and emits it again as a ``localization_predicted`` event with ``method = 'frozen'``: the
envelope attributes carry ``policy_version = P``, ``source_rollout_id`` (the localizer rollout it
copies) and ``for_run`` (the GRPO run that asked for it); ``rollout_id`` is
``frozen/<P>/<source rollout>``. After the warehouse is refreshed with
``forge.train.frozen_localization_policy = P``, ``rl_prompts`` prefers P's latest frozen
localization of each task (other policies' frozen copies are ignored): ``localized_files`` are
P's files, ``localized_from = 'frozen'``, ``localization_policy = P``, and the prompt is the one a
BugFixer of P's run saw with exactly those files (else built from the issue and the files). GRPO
then reads only the rows whose ``localization_policy`` is P.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vtforge.schemas import new_event

if TYPE_CHECKING:
    from vtforge.config import Config

PRODUCER = "vtforge.trainers"

PICK_SQL = """
SELECT l.task_id, l.files, l.rollout_id, l.synthetic
FROM localizations l
JOIN rollouts r USING (rollout_id)
WHERE r.policy_version = ? AND l.method = 'model' AND l.file_kind = 'source' AND len(l.files) > 0
  AND l.task_id IN (SELECT task_id FROM rl_prompts)
QUALIFY row_number() OVER (
    PARTITION BY l.task_id ORDER BY r.sample_index, l.occurred_at DESC, l.rollout_id) = 1
ORDER BY l.task_id
"""


class FrozenLocalizationError(RuntimeError):
    """The frozen policy cannot supply a localization; the message names the policy and the warehouse."""


@dataclass
class FrozenLocalization:
    """What one freeze emitted: the policy, the tasks it covers and the ``rl_prompts`` tasks it misses."""

    policy_version: str
    request: str
    files: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "tasks": len(self.files),
            "missing": len(self.missing),
            "missing_task_ids": self.missing[:50],
        }


@dataclass(frozen=True)
class Pick:
    task_id: str
    files: list[str]
    source_rollout_id: str
    synthetic: bool  # a copy of a synthetic (recorded) localization is synthetic too


def pick(con: Any, policy_version: str) -> list[Pick]:
    """``policy_version``'s source-file localization of every ``rl_prompts`` task it localized."""
    return [Pick(t, list(f), r, bool(s)) for t, f, r, s in con.execute(PICK_SQL, [policy_version]).fetchall()]


def frozen_event(p: Pick, policy_version: str, request: str) -> dict[str, Any]:
    """The frozen copy of one pick (its id is new for every request, so the latest request wins)."""
    return new_event(
        "localization_predicted",
        {
            "rollout_id": f"frozen/{policy_version}/{p.source_rollout_id}",
            "files": p.files,
            "dropped": [],
            "method": "frozen",
        },
        producer=PRODUCER,
        key=f"frozen/{request}/{policy_version}/{p.task_id}",
        task_id=p.task_id,
        run_id=request,
        stage="rl",
        synthetic=p.synthetic,
        attributes={
            "policy_version": policy_version,
            "source_rollout_id": p.source_rollout_id,
            "for_run": request,
            "target": "source",
        },
    )


def freeze_localization(
    cfg: Config, policy_version: str, *, request: str, refresh: bool = True
) -> FrozenLocalization:
    """Emit ``policy_version``'s localization of every RL task as frozen; ``refresh`` brings the
    warehouse up to date first (so the policy's newest localizations count) and again after."""
    from vtforge.trainers.readers import connect
    from vtforge.transport import sink_from_config
    from vtforge.warehouse.refresh import refresh as refresh_warehouse

    cfg = cfg.with_lever("train", "frozen_localization_policy", policy_version)  # rl_prompts reads it
    if refresh:
        refresh_warehouse(cfg, exports=False)
    con = connect(cfg.duckdb_path)
    try:
        known = [
            r[0] for r in con.execute("SELECT policy_version FROM policy_versions ORDER BY 1").fetchall()
        ]
        if policy_version not in known:
            raise FrozenLocalizationError(
                f"--frozen-localization {policy_version}: no such policy version in {cfg.duckdb_path} "
                f"(known: {', '.join(known) or 'none'})"
            )
        picks = pick(con, policy_version)
        tasks = [r[0] for r in con.execute("SELECT task_id FROM rl_prompts ORDER BY task_id").fetchall()]
    finally:
        con.close()
    if not picks:
        raise FrozenLocalizationError(
            f"--frozen-localization {policy_version}: the policy has no source-file localization of any "
            f"of the {len(tasks)} rl_prompts tasks in {cfg.duckdb_path} (run self-play or `vtforge tasks "
            "baseline` with it first)"
        )
    result = FrozenLocalization(policy_version, request, files={p.task_id: p.files for p in picks})
    result.missing = [t for t in tasks if t not in result.files]
    with sink_from_config(cfg, producer=PRODUCER) as sink:
        sink.emit_many(frozen_event(p, policy_version, request) for p in picks)
    if refresh:
        refresh_warehouse(cfg, exports=False)
    return result
