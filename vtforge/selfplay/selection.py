"""Execution-based selection over a task's unique candidate patches.

Each candidate gets three scores in [0, 1]:

- ``test_pass_rate``: share of the *counted* generated tests it passes (a test counts only when it
  fails on the base commit, since others cannot tell a fix from no fix, and was flagged flaky in no
  run of the matrix, since its verdict is chance);
- ``regression_safety``: share of the base-passing regression tests still passing (flaky ones
  left out);
- ``diff_minimality``: ``smallest candidate's changed lines / this candidate's changed lines``.

``total`` is their weighted sum (``forge.selection``). Ranking is by total, then by how many
rollouts proposed the same normalised patch (votes), then fewer changed lines, then patch id, so
equal inputs always give the same order. With ``majority_vote`` the order is Agentless's: among the
candidates with the best regression safety, most votes first, then total. A patch that did not
apply scores 0 everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from vtforge.selfplay.matrix import Matrix

if TYPE_CHECKING:
    from vtforge.config import SelectionConfig


@dataclass(frozen=True)
class Candidate:
    patch_id: str
    changed_lines: int
    votes: int


@dataclass(frozen=True)
class Weights:
    test_pass_rate: float = 1.0
    regression_safety: float = 1.0
    diff_minimality: float = 0.1

    @classmethod
    def from_config(cls, selection: SelectionConfig) -> Weights:
        return cls(
            selection.test_pass_rate_weight,
            selection.regression_safety_weight,
            selection.diff_minimality_weight,
        )

    def as_map(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Score:
    patch_id: str
    test_pass_rate: float
    regression_safety: float
    diff_minimality: float
    votes: int
    total: float
    rank: int
    changed_lines: int = 0

    def as_event(self) -> dict[str, object]:
        return {
            "patch_id": self.patch_id,
            "test_pass_rate": self.test_pass_rate,
            "regression_safety": self.regression_safety,
            "diff_minimality": self.diff_minimality,
            "votes": self.votes,
            "total": self.total,
            "rank": self.rank,
        }


def score(
    candidates: Iterable[Candidate],
    pass_rate: dict[str, float],
    regression_safety: dict[str, float],
    weights: Weights,
    *,
    applied: dict[str, bool] | None = None,
    majority_vote: bool = False,
) -> list[Score]:
    """The ranked score table (rank 1 first)."""
    items = list(candidates)
    applied = applied or {}
    ok = [c for c in items if applied.get(c.patch_id, True)]
    smallest = min((max(1, c.changed_lines) for c in ok), default=1)
    rows = []
    for c in items:
        if not applied.get(c.patch_id, True):
            tpr = rs = mini = 0.0
        else:
            tpr = pass_rate.get(c.patch_id, 0.0)
            rs = regression_safety.get(c.patch_id, 0.0)
            mini = smallest / max(1, c.changed_lines)
        total = round(
            weights.test_pass_rate * tpr + weights.regression_safety * rs + weights.diff_minimality * mini, 12
        )
        rows.append((c, tpr, rs, mini, total))

    if majority_vote:
        best_rs = max((r[2] for r in rows), default=0.0)

        def key(r):
            return (r[2] < best_rs, -r[0].votes, -r[4], r[0].changed_lines, r[0].patch_id)
    else:

        def key(r):
            return (-r[4], -r[0].votes, r[0].changed_lines, r[0].patch_id)

    rows.sort(key=key)
    return [
        Score(c.patch_id, tpr, rs, mini, c.votes, total, rank, c.changed_lines)
        for rank, (c, tpr, rs, mini, total) in enumerate(rows, start=1)
    ]


def score_matrix(
    candidates: Iterable[Candidate], matrix: Matrix, weights: Weights, *, majority_vote: bool = False
) -> list[Score]:
    items = list(candidates)
    ids = [c.patch_id for c in items]
    return score(
        items,
        {k: matrix.pass_rate(k) for k in ids},
        {k: matrix.regression_safety(k) for k in ids},
        weights,
        applied={k: bool(matrix.rows.get(k) and matrix.rows[k].result.patch_applied) for k in ids},
        majority_vote=majority_vote,
    )
