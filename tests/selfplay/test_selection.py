"""Selection on hand-made score inputs with known answers."""

from __future__ import annotations

from vtforge.selfplay.selection import Candidate, Weights, score

W = Weights(1.0, 1.0, 0.1)


def ranked(scores):
    return [s.patch_id for s in scores]


def test_pass_rate_beats_votes_and_size() -> None:
    cands = [Candidate("small_popular", 1, 10), Candidate("right", 8, 1)]
    out = score(cands, {"small_popular": 0.5, "right": 1.0}, {"small_popular": 1.0, "right": 1.0}, W)
    assert ranked(out) == ["right", "small_popular"]
    assert [s.rank for s in out] == [1, 2]
    top = out[0]
    assert top.diff_minimality == 1 / 8 and abs(top.total - (1.0 + 1.0 + 0.1 / 8)) < 1e-9


def test_regression_safety_counts() -> None:
    cands = [Candidate("breaks", 1, 3), Candidate("safe", 1, 1)]
    out = score(cands, {"breaks": 1.0, "safe": 1.0}, {"breaks": 0.5, "safe": 1.0}, W)
    assert ranked(out) == ["safe", "breaks"]


def test_ties_are_broken_by_votes_then_size_then_id() -> None:
    pr = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}
    rs = dict.fromkeys(pr, 1.0)
    cands = [Candidate("d", 2, 2), Candidate("c", 2, 2), Candidate("b", 2, 5), Candidate("a", 2, 2)]
    no_size = Weights(1.0, 1.0, 0.0)
    assert ranked(score(cands, pr, rs, no_size)) == ["b", "a", "c", "d"]
    assert ranked(score(list(reversed(cands)), pr, rs, no_size)) == ["b", "a", "c", "d"]
    sized = [Candidate("x", 3, 1), Candidate("y", 2, 1)]
    assert ranked(score(sized, {"x": 1, "y": 1}, {"x": 1, "y": 1}, no_size)) == ["y", "x"]


def test_unapplied_patch_scores_zero() -> None:
    cands = [Candidate("broken", 1, 9), Candidate("ok", 5, 1)]
    out = score(
        cands,
        {"broken": 1.0, "ok": 0.2},
        {"broken": 1.0, "ok": 1.0},
        W,
        applied={"broken": False, "ok": True},
    )
    assert ranked(out) == ["ok", "broken"] and out[1].total == 0.0


def test_majority_vote_among_the_regression_safe() -> None:
    cands = [Candidate("popular_unsafe", 1, 9), Candidate("popular", 2, 5), Candidate("best_score", 2, 2)]
    pr = {"popular_unsafe": 1.0, "popular": 0.5, "best_score": 1.0}
    rs = {"popular_unsafe": 0.8, "popular": 1.0, "best_score": 1.0}
    assert ranked(score(cands, pr, rs, W, majority_vote=True)) == ["popular", "best_score", "popular_unsafe"]
    assert ranked(score(cands, pr, rs, W))[0] == "best_score"


def test_weights_change_the_answer() -> None:
    cands = [Candidate("tiny", 1, 1), Candidate("big", 40, 1)]
    pr = {"tiny": 0.9, "big": 1.0}
    rs = {"tiny": 1.0, "big": 1.0}
    assert ranked(score(cands, pr, rs, Weights(1.0, 1.0, 0.0)))[0] == "big"
    assert ranked(score(cands, pr, rs, Weights(1.0, 1.0, 0.5)))[0] == "tiny"
