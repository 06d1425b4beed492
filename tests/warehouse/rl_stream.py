"""A hand-built stream for rl_prompts' rules: runnable tasks only, measured buckets, frozen localization.

A  repo_dir, F2P    v0 run r0: localizer LA0 (a.py x.py), BugFixers BA0 (1.0) BA1 (0.0)
                    v1 run r1: localizer LA1 (z.py), BugFixer BA2 (0.0)
                    frozen from v0 (source LA0)          → baseline 0.5 medium, files a.py x.py
B  repo_dir, F2P    nothing ran                          → unmeasured, gold files
C  no repo_dir      v0: BugFixer BC0 (1.0)               → excluded (no_repo_dir), not replayed
D  repo_dir, no F2P                                      → excluded (no_fail_to_pass)
E  repo_dir, F2P    v0 self-play: BE0 BE1 (1.0 each)      (would be 1.0: easy)
                    sft baseline (stage eval): s0 1.0, s1 retry 0 → 0.0 then retry 1 → 1.0,
                    s2 0.0, s3 0.0                       → 2 of 4 samples: 0.5 medium
"""

from __future__ import annotations

from typing import Any

from tests.warehouse.streams import Stream, gold_diff

A, B, C, D, E = "rl__a-1", "rl__b-1", "rl__c-1", "rl__d-1", "rl__e-1"
F2P = "t/test_x.py::test_fix"


def _task(s: Stream, task_id: str, *, repo_dir: str | None, f2p: list[str], gold: list[str]) -> None:
    s.add(
        "task_registered",
        {
            "instance_id": task_id,
            "repo": "org/rl",
            "base_commit": "c0ffee",
            "problem_statement": f"issue of {task_id}",
            "patch": gold_diff(*gold),
            "test_patch": "diff --git a/t/test_x.py b/t/test_x.py\n",
            "fail_to_pass": f2p,
            "pass_to_pass": [],
            "repo_dir": repo_dir,
            "source": "swe-bench",
            "provenance": {
                "dataset_slice": "rl",
                "origin": "tests",
                "license": None,
                "commit": None,
                "created_at": None,
                "importer_version": "0",
                "content_hash": task_id,
            },
            "split": "train",
        },
        key=task_id,
        task_id=task_id,
        stage="agentless",
    )


def rollout(
    s: Stream,
    rollout_id: str,
    task_id: str,
    role: str,
    version: str,
    sample: int,
    *,
    run_id: str,
    stage: str = "selfplay",
    retry: int = 0,
    purpose: str | None = None,
) -> None:
    s.add(
        "rollout",
        {
            "rollout_id": rollout_id,
            "role": role,
            "model": "tiny",
            "policy_version": version,
            "engine": "replay",
            "sample_index": sample,
            "retry_index": retry,
            "temperature": 0.0 if sample == 0 else 1.0,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "latency_ms": 1.0,
            "stop_reason": "stop",
            "messages": [
                {"role": "system", "content": f"sys {rollout_id}", "name": None, "tool_call_id": None},
                {"role": "user", "content": f"ask {rollout_id}", "name": None, "tool_call_id": None},
                {"role": "assistant", "content": f"answer {rollout_id}", "name": None, "tool_call_id": None},
            ],
            "reasoning": None,
            "parse_status": "ok",
        },
        key=rollout_id,
        task_id=task_id,
        run_id=run_id,
        stage=stage,
        attributes={"purpose": purpose} if purpose else {},
    )


def judged(s: Stream, rollout_id: str, task_id: str, version: str, value: float, *, stage: str = "selfplay"):
    """A reward with the rollout as its subject (no patch needed to judge it)."""
    s.add(
        "reward_assigned",
        {
            "reward_id": f"{rollout_id}:rollout",
            "subject_kind": "rollout",
            "subject_id": rollout_id,
            "rollout_id": rollout_id,
            "execution_id": None,
            "policy_version": version,
            "reward": value,
            "outcome": "resolved" if value >= 1.0 else "unresolved",
        },
        key=f"reward:{rollout_id}",
        task_id=task_id,
        stage=stage,
    )


def localized(s: Stream, rollout_id: str, task_id: str, files: list[str]) -> None:
    s.add(
        "localization_predicted",
        {"rollout_id": rollout_id, "files": files, "dropped": [], "method": "model"},
        key=f"loc:{rollout_id}",
        task_id=task_id,
        attributes={"target": "source"},
    )


def rl_stream() -> list[dict[str, Any]]:
    """The stream above, without the frozen localization (emit it separately)."""
    s = Stream()
    _task(s, A, repo_dir="/repos/rl-a", f2p=[F2P], gold=["a.py"])
    _task(s, B, repo_dir="/repos/rl-b", f2p=[F2P], gold=["b.py"])
    _task(s, C, repo_dir=None, f2p=[F2P], gold=["c.py"])
    _task(s, D, repo_dir="/repos/rl-d", f2p=[], gold=["d.py"])
    _task(s, E, repo_dir="/repos/rl-e", f2p=[F2P], gold=["e.py"])
    # v0
    rollout(s, "LA0", A, "localizer", "v0", 0, run_id="r0")
    localized(s, "LA0", A, ["a.py", "x.py"])
    for rid, sample, value in (("BA0", 0, 1.0), ("BA1", 1, 0.0)):
        rollout(s, rid, A, "bugfixer", "v0", sample, run_id="r0")
        judged(s, rid, A, "v0", value)
    rollout(s, "BC0", C, "bugfixer", "v0", 0, run_id="r0")
    judged(s, "BC0", C, "v0", 1.0)
    for rid, sample in (("BE0", 0), ("BE1", 1)):
        rollout(s, rid, E, "bugfixer", "v0", sample, run_id="r0")
        judged(s, rid, E, "v0", 1.0)
    # v1
    rollout(s, "LA1", A, "localizer", "v1", 0, run_id="r1")
    localized(s, "LA1", A, ["z.py"])
    rollout(s, "BA2", A, "bugfixer", "v1", 0, run_id="r1")
    judged(s, "BA2", A, "v1", 0.0)
    # the sft policy's measured baseline on E
    for rid, sample, retry, value in (
        ("SE0", 0, 0, 1.0),
        ("SE1a", 1, 0, 0.0),
        ("SE1b", 1, 1, 1.0),
        ("SE2", 2, 0, 0.0),
        ("SE3", 3, 0, 0.0),
    ):
        rollout(
            s,
            rid,
            E,
            "bugfixer",
            "sft",
            sample,
            run_id="baseline-1",
            stage="eval",
            retry=retry,
            purpose="baseline",
        )
        judged(s, rid, E, "sft", value, stage="eval")
    return s.events
