"""A small hand-built event stream whose every dataset and telemetry value is worked out by hand.

Two tasks (T1 train, T2 eval), two policy versions (v0 then v1):

    L1  localizer  T1 v0  files a.py x.py b.py   gold a.py b.py  → recall@1,2 = 1/2, @3+ = 1
    L2  localizer  T2 v0  files z.py             gold c.py       → recall 0
    GL  localizer  T2 v0  engine gold, method gold, files c.py   → a gold SFT example
    B1  bugfixer   T1 v0  P1 applied; E1: g1 PASSED, own test_fix FAILED → R1 0 (false positive)
    B2  bugfixer   T1 v0  P2 applied; E2: everything PASSED → R2 1 (synthetic: upsampled)
    B3  bugfixer   T1 v1  P3 apply failed, never run
    B4  bugfixer   T1 v1  proposes P2 again (same diff, same patch_id)
    B5  bugfixer   T2 v1  P4 applied; E4: own test_c FAILED → R4 0
    W1  testwriter T1 v0  G1 (test_g1): E0 unpatched → FAILED; passes under the fix P2
    W2  testwriter T1 v0  G2 (test_g2): E5 unpatched → PASSED (flaky)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import new_event

PRODUCER = "tests.warehouse"
START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

T1, T2 = "org__repo-1", "org__repo-2"
T1_F2P, T1_P2P = "t/test_a.py::test_fix", "t/test_a.py::test_ok"
T2_F2P = "t/test_c.py::test_c"
G1_NAME, G2_NAME = "t/test_gen.py::test_g1", "t/test_gen.py::test_g2"
T1_TEST_PATCH = "diff --git a/t/test_a.py b/t/test_a.py\n+def test_fix(): ...\n"


def gold_diff(*files: str) -> str:
    return "".join(f"diff --git a/{f} b/{f}\n--- a/{f}\n+++ b/{f}\n@@ -1 +1 @@\n-old\n+new\n" for f in files)


class Stream:
    """Builds events with strictly increasing timestamps (order = the order written here)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._tick = 0

    def add(self, event_type: str, payload: dict[str, Any], key: str, task_id: str | None, **kw: Any) -> dict:
        self._tick += 1
        event = new_event(
            event_type,
            payload,
            producer=PRODUCER,
            key=key,
            task_id=task_id,
            stage=kw.pop("stage", "selfplay"),
            occurred_at=START + timedelta(minutes=self._tick),
            **kw,
        )
        self.events.append(event)
        return event

    def task(
        self, task_id: str, split: str, gold_files: list[str], f2p: list[str], p2p: list[str], test_patch: str
    ):
        self.add(
            "task_registered",
            {
                "instance_id": task_id,
                "repo": "org/repo",
                "base_commit": "c0ffee",
                "problem_statement": f"issue of {task_id}",
                "patch": gold_diff(*gold_files),
                "test_patch": test_patch,
                "fail_to_pass": f2p,
                "pass_to_pass": p2p,
                "source": "swe-bench",
                "provenance": {
                    "dataset_slice": "hand",
                    "origin": "tests",
                    "license": None,
                    "commit": None,
                    "created_at": None,
                    "importer_version": "0",
                    "content_hash": task_id,
                },
                "split": split,
            },
            key=task_id,
            task_id=task_id,
            stage="agentless",
        )

    def rollout(
        self,
        rollout_id: str,
        task_id: str,
        role: str,
        version: str,
        sample: int,
        *,
        engine: str = "replay",
        answer: str | None = None,
        reasoning: str | None = None,
        synthetic: bool = False,
    ) -> None:
        self.add(
            "rollout",
            {
                "rollout_id": rollout_id,
                "role": role,
                "model": "tiny",
                "policy_version": version,
                "engine": engine,
                "sample_index": sample,
                "temperature": 0.0 if sample == 0 else 1.0,
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "latency_ms": 1.0,
                "stop_reason": "stop",
                "messages": [
                    {"role": "system", "content": f"sys {rollout_id}", "name": None, "tool_call_id": None},
                    {"role": "user", "content": f"ask {rollout_id}", "name": None, "tool_call_id": None},
                    {
                        "role": "assistant",
                        "content": answer if answer is not None else f"answer {rollout_id}",
                        "name": None,
                        "tool_call_id": None,
                    },
                ],
                "reasoning": reasoning if reasoning is not None else f"why {rollout_id}",
                "parse_status": "ok",
            },
            key=rollout_id,
            task_id=task_id,
            synthetic=synthetic,
        )

    def localization(self, rollout_id: str, task_id: str, files: list[str], method: str = "model") -> None:
        self.add(
            "localization_predicted",
            {"rollout_id": rollout_id, "files": files, "dropped": [], "method": method},
            key=f"loc:{rollout_id}",
            task_id=task_id,
        )

    def patch(self, patch_id: str, rollout_id: str, task_id: str, apply_status: str = "applied") -> None:
        self.add(
            "patch_proposed",
            {
                "patch_id": patch_id,
                "rollout_id": rollout_id,
                "diff": f"diff of {patch_id}",
                "files": ["a.py"],
                "lines_added": 1,
                "lines_removed": 1,
                "apply_status": apply_status,
            },
            key=f"patch:{rollout_id}",
            task_id=task_id,
        )

    def test(self, test_id: str, rollout_id: str, task_id: str, name: str) -> None:
        self.add(
            "test_proposed",
            {
                "test_id": test_id,
                "rollout_id": rollout_id,
                "test_file": "t/test_gen.py",
                "test_names": [name],
                "diff": f"diff of {test_id}",
            },
            key=f"test:{rollout_id}",
            task_id=task_id,
        )

    def execution(
        self,
        execution_id: str,
        task_id: str,
        patch_id: str | None,
        test_id: str | None,
        results: list[tuple[str, str] | tuple[str, str, bool]],
    ) -> None:
        self.add(
            "execution_result",
            {
                "execution_id": execution_id,
                "patch_id": patch_id,
                "test_id": test_id,
                "backend": "local",
                "command": ["pytest"],
                "status": "completed",
                "exit_code": 0,
                "tests": [
                    {
                        "name": r[0],
                        "status": r[1],
                        "duration_s": 0.1,
                        "reruns": 0,
                        "flaky": r[2] if len(r) > 2 else False,
                    }
                    for r in results
                ],
                "duration_s": 1.0,
            },
            key=execution_id,
            task_id=task_id,
        )

    def reward(
        self,
        reward_id: str,
        task_id: str,
        patch_id: str,
        rollout_id: str,
        execution_id: str,
        version: str,
        value: float,
    ) -> None:
        self.add(
            "reward_assigned",
            {
                "reward_id": reward_id,
                "subject_kind": "patch",
                "subject_id": patch_id,
                "rollout_id": rollout_id,
                "execution_id": execution_id,
                "policy_version": version,
                "reward": value,
                "outcome": "resolved" if value >= 1.0 else "unresolved",
            },
            key=reward_id,
            task_id=task_id,
        )


def hand_stream() -> list[dict[str, Any]]:
    s = Stream()
    s.task(T1, "train", ["a.py", "b.py"], [T1_F2P], [T1_P2P], T1_TEST_PATCH)
    s.task(T2, "eval", ["c.py"], [T2_F2P], [], "diff --git a/t/test_c.py b/t/test_c.py\n")
    # v0
    s.rollout("L1", T1, "localizer", "v0", 0, answer="a.py\nx.py\nb.py")
    s.localization("L1", T1, ["a.py", "x.py", "b.py"])
    s.rollout("L2", T2, "localizer", "v0", 0)
    s.localization("L2", T2, ["z.py"])
    s.rollout("B1", T1, "bugfixer", "v0", 0)
    s.patch("P1", "B1", T1)
    s.rollout("B2", T1, "bugfixer", "v0", 1, answer="<think>r2</think>\nfix", reasoning="r2", synthetic=True)
    s.patch("P2", "B2", T1)
    s.rollout("W1", T1, "testwriter", "v0", 0)
    s.test("G1", "W1", T1, G1_NAME)
    s.rollout("W2", T1, "testwriter", "v0", 1)
    s.test("G2", "W2", T1, G2_NAME)
    s.execution("E0", T1, None, "G1", [(G1_NAME, "FAILED")])
    s.execution("E5", T1, None, "G2", [(G2_NAME, "PASSED", True)])
    s.execution("E1", T1, "P1", None, [(G1_NAME, "PASSED"), (T1_F2P, "FAILED"), (T1_P2P, "PASSED")])
    s.reward("R1", T1, "P1", "B1", "E1", "v0", 0.0)
    s.execution("E2", T1, "P2", None, [(G1_NAME, "PASSED"), (T1_F2P, "PASSED"), (T1_P2P, "PASSED")])
    s.reward("R2", T1, "P2", "B2", "E2", "v0", 1.0)
    s.rollout("GL", T2, "localizer", "v0", 0, engine="gold", answer="c.py")
    s.localization("GL", T2, ["c.py"], method="gold")
    s.add(
        "selection_decided",
        {
            "selection_id": "S1",
            "method": "weighted",
            "selected_patch_id": "P2",
            "weights": {"test_pass_rate": 1.0},
            "scores": [
                {
                    "patch_id": "P2",
                    "test_pass_rate": 1.0,
                    "regression_safety": 1.0,
                    "diff_minimality": 1.0,
                    "votes": 0,
                    "total": 2.1,
                    "rank": 1,
                },
                {
                    "patch_id": "P1",
                    "test_pass_rate": 1.0,
                    "regression_safety": 1.0,
                    "diff_minimality": 1.0,
                    "votes": 0,
                    "total": 2.0,
                    "rank": 2,
                },
            ],
        },
        key="S1",
        task_id=T1,
    )
    # v1
    s.rollout("B3", T1, "bugfixer", "v1", 0)
    s.patch("P3", "B3", T1, apply_status="failed")
    s.rollout("B4", T1, "bugfixer", "v1", 1)
    s.patch("P2", "B4", T1)
    s.rollout("B5", T2, "bugfixer", "v1", 0)
    s.patch("P4", "B5", T2)
    s.execution("E4", T2, "P4", None, [(T2_F2P, "FAILED")])
    s.reward("R4", T2, "P4", "B5", "E4", "v1", 0.0)
    for step in (0, 1):
        s.add(
            "training_step",
            {"trainer": "grpo", "step": step, "loss": 1.0 - step / 2, "policy_version": "v1"},
            key=f"train:{step}",
            task_id=None,
            stage="rl",
            run_id="train-run",
        )
    s.add(
        "evaluation_result",
        {
            "evaluation_id": "EV1",
            "instance_id": T2,
            "model": "tiny",
            "policy_version": "v1",
            "patch_is_none": False,
            "patch_exists": True,
            "patch_successfully_applied": True,
            "resolved": False,
            "fail_to_pass_success": [],
            "fail_to_pass_failure": [T2_F2P],
            "pass_to_pass_success": [],
            "pass_to_pass_failure": [],
        },
        key="EV1",
        task_id=T2,
        stage="eval",
    )
    return s.events
