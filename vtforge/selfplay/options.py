"""The levers of one self-play round (``forge.selfplay`` and ``forge.selection``, resolved)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vtforge import constants as C

if TYPE_CHECKING:
    from vtforge.config import Config


@dataclass(frozen=True)
class Options:
    patches: int
    tests: int
    run_id: str
    policy_version: str
    round_index: int = 1
    synthesis: bool = True
    synthesis_top_n: int = C.SYNTHESIS_TOP_N
    inject_counterexamples: bool = True
    majority_vote: bool = False
    max_localized_files: int = C.MAX_LOCALIZED_FILES
    budget_tokens: int = C.INFERENCE_TOKENS  # a request's window (prompt + completion), model-capped
    seed: int = 0
    flaky_reruns: int = C.FLAKY_RERUNS  # forge.selfplay.flaky_reruns

    @classmethod
    def measurement(
        cls, cfg: Config, *, patches: int, tests: int, run_id: str, policy_version: str
    ) -> Options:
        """A round that measures a policy (baselines, skill evaluations): no synthesis, no injected
        counterexamples, the config's selection, localization, flaky-rerun and window levers."""
        sp = cfg.forge.selfplay
        return cls(
            patches=patches,
            tests=tests,
            run_id=run_id,
            policy_version=policy_version,
            synthesis=False,
            inject_counterexamples=False,
            majority_vote=cfg.forge.selection.majority_vote,
            max_localized_files=sp.max_localized_files,
            flaky_reruns=sp.flaky_reruns,
            budget_tokens=min(sp.context_tokens, cfg.forge.context.inference_tokens),
        )
