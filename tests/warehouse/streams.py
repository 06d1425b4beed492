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

from vtforge.schemas import new_event

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
        self,
        task_id: str,
        split: str,
        gold_files: list[str],
        f2p: list[str],
        p2p: list[str],
        test_patch: str,
        repo_dir: str | None = "/srv/repos/org-repo",
    ):
        """A registered task; ``repo_dir`` is where its repository would be (never read here), so the
        execution-outcome reward counts it as runnable (rl_prompts_excluded)."""
        self.add(
            "task_registered",
            {
                "instance_id": task_id,
                "repo": "org/repo",
                "base_commit": "c0ffee",
                "problem_statement": f"issue of {task_id}",
                "patch": gold_diff(*gold_files),
                "test_patch": test_patch,
                "repo_dir": repo_dir,
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
        parse_status: str = "ok",
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
                "parse_status": parse_status,
            },
            key=rollout_id,
            task_id=task_id,
            synthetic=synthetic,
        )

    def localization(
        self,
        rollout_id: str,
        task_id: str,
        files: list[str],
        method: str = "model",
        attributes: dict[str, str] | None = None,
    ) -> None:
        self.add(
            "localization_predicted",
            {"rollout_id": rollout_id, "files": files, "dropped": [], "method": method},
            key=f"loc:{rollout_id}",
            task_id=task_id,
            **({"attributes": attributes} if attributes else {}),
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
        results: list[tuple[str, str] | tuple[str, str, bool] | tuple[str, str, bool, int]],
        attributes: dict[str, str] | None = None,
    ) -> None:
        """``results``: (name, status[, flaky[, reruns]]); ``attributes`` e.g. {"kind": "gold"}."""
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
                        "reruns": r[3] if len(r) > 3 else 0,
                        "flaky": r[2] if len(r) > 2 else False,
                    }
                    for r in results
                ],
                "duration_s": 1.0,
            },
            key=execution_id,
            task_id=task_id,
            **({"attributes": attributes} if attributes else {}),
        )

    def reward(
        self,
        reward_id: str,
        task_id: str,
        patch_id: str,
        rollout_id: str,
        execution_id: str | None,
        version: str,
        value: float,
        *,
        subject_kind: str = "patch",
        outcome: str | None = None,
    ) -> None:
        """A reward for ``patch_id`` (or, with ``subject_kind``, a test or rollout id in its place)."""
        self.add(
            "reward_assigned",
            {
                "reward_id": reward_id,
                "subject_kind": subject_kind,
                "subject_id": patch_id,
                "rollout_id": rollout_id,
                "execution_id": execution_id,
                "policy_version": version,
                "reward": value,
                "outcome": outcome or ("resolved" if value >= 1.0 else "unresolved"),
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


# --- the recipe's metrics ----------------------------------------------------------------------

K = [f"org__recipe-{i}" for i in range(1, 7)]  # K[0] .. K[5]


def k_source_file(i: int) -> str:
    return f"src/k{i}.py"


def k_test_file(i: int) -> str:
    return f"tests/test_k{i}.py"


def recipe_stream() -> list[dict[str, Any]]:
    """Localization per file kind, acceptance per BugFixer sample, fail-before-fix per task, flakes.

    Six tasks K[i]: gold patch touches src/k<i+1>.py, test patch tests/test_k<i+1>.py (K[5] has
    none: a synthesised bug, its FAIL_TO_PASS test is in tests/test_k6.py). Policy v0:

        LS  localizer  K0  src/k1.py                       source, perfect → recall 1
        LT  localizer  K0  tests/test_k1.py, target=test   test (self-play's tag), perfect → 1
        LW  testwriter K0  tests/test_k1.py                test (a TestWriter's), perfect → 1
        B1  bugfixer   K0  P1 applied                      accepted
        B2  bugfixer   K0  parse_status search_not_found   parse failure (a rollout reward, no patch)
        B3  bugfixer   K0  P3 apply failed                 apply failure  → acceptance 1/3
        W1  testwriter K0  A1 rewarded fails_before_passes_after; W1b: A1b passes on the base run
        W2, W3 testwriter K1, K2  A2, A3 rewarded fails_before_passes_after
        W4  testwriter K3  A4: base FAILED (re-run twice, never passed: not flaky), gold run PASSED
        W5  testwriter K4  F: base FAILED, gold run PASSED only on a re-run (flaky), rewarded good
        → tasks K0..K4 sampled, K0..K3 good: 4/5 = 0.8, not > 0.8

    Policy v1: LT5, a test-file localization of K5 (tests/test_k6.py first: recall@1 = 1; no source
    localization, so no localization gate); BugFixer samples on K0: empty_output, no_edit (GRPO),
    parsed but never tried (not judged: out of the denominator), applied_with_fuzz, applied, applied,
    empty_output again → acceptance 3/6 = 0.5 (>= 0.5 passes); TestWriter samples on K0..K5,
    rewarded good on K0..K4, K5's did not parse → 5/6 > 0.8.
    """
    s = Stream()
    for i, task in enumerate(K, start=1):
        test_patch = gold_diff(k_test_file(i)) if task != K[5] else ""  # K5: a synthesised bug
        s.task(task, "train", [k_source_file(i)], [f"{k_test_file(i)}::test_fix"], [], test_patch)
    k0 = K[0]
    # --- v0: localization
    s.rollout("LS", k0, "localizer", "v0", 0)
    s.localization("LS", k0, [k_source_file(1)])
    s.rollout("LT", k0, "localizer", "v0", 1)
    s.localization("LT", k0, [k_test_file(1)], attributes={"target": "test"})
    s.rollout("LW", k0, "testwriter", "v0", 9)
    s.localization("LW", k0, [k_test_file(1)])
    # --- v0: BugFixer samples
    s.rollout("B1", k0, "bugfixer", "v0", 0)
    s.patch("P1", "B1", k0)
    s.rollout("B2", k0, "bugfixer", "v0", 1, parse_status="search_not_found")
    s.reward("RB2", k0, "B2", "B2", None, "v0", 0.0, subject_kind="rollout", outcome="unresolved")
    s.rollout("B3", k0, "bugfixer", "v0", 2)
    s.patch("P3", "B3", k0, apply_status="failed")
    # --- v0: TestWriter samples
    for n, (task, rollout, test) in enumerate([(k0, "W1", "A1"), (K[1], "W2", "A2"), (K[2], "W3", "A3")]):
        s.rollout(rollout, task, "testwriter", "v0", 0)
        s.test(test, rollout, task, f"tests/test_gen.py::test_a{n + 1}")
        s.reward(
            f"R{test}",
            task,
            test,
            rollout,
            None,
            "v0",
            1.0,
            subject_kind="test",
            outcome="fails_before_passes_after",
        )
    s.rollout("W1b", k0, "testwriter", "v0", 1)
    s.test("A1b", "W1b", k0, "tests/test_gen.py::test_a1b")
    s.execution(
        "EB0",
        k0,
        None,
        None,
        [("tests/test_gen.py::test_a1", "FAILED"), ("tests/test_gen.py::test_a1b", "PASSED")],
        {"kind": "base"},
    )
    s.rollout("W4", K[3], "testwriter", "v0", 0)
    s.test("A4", "W4", K[3], "tests/test_gen.py::test_a4")
    s.execution(
        "EB3", K[3], None, None, [("tests/test_gen.py::test_a4", "FAILED", False, 2)], {"kind": "base"}
    )
    s.execution("EG3", K[3], None, None, [("tests/test_gen.py::test_a4", "PASSED")], {"kind": "gold"})
    s.rollout("W5", K[4], "testwriter", "v0", 0)
    s.test("F", "W5", K[4], "tests/test_gen.py::test_f")
    s.execution(
        "EB4", K[4], None, None, [("tests/test_gen.py::test_f", "FAILED", False, 2)], {"kind": "base"}
    )
    s.execution("EG4", K[4], None, None, [("tests/test_gen.py::test_f", "PASSED", True, 1)], {"kind": "gold"})
    s.reward(
        "RF", K[4], "F", "W5", "EG4", "v0", 1.0, subject_kind="test", outcome="fails_before_passes_after"
    )
    # --- v1: a test-file localization only (K5 has no test patch: its FAIL_TO_PASS tests' files)
    s.rollout("LT5", K[5], "localizer", "v1", 1)
    s.localization("LT5", K[5], [k_test_file(6), k_test_file(1)], attributes={"target": "test"})
    # --- v1: BugFixer samples
    s.rollout("C1", k0, "bugfixer", "v1", 0, parse_status="empty_output")
    s.rollout("C2", k0, "bugfixer", "v1", 1, parse_status="no_edit")
    s.rollout("C3", k0, "bugfixer", "v1", 2)
    s.patch("Q3", "C3", k0, apply_status="not_tried")
    s.rollout("C4", k0, "bugfixer", "v1", 3)
    s.patch("Q4", "C4", k0, apply_status="applied_with_fuzz")
    s.rollout("C5", k0, "bugfixer", "v1", 4)
    s.patch("Q5", "C5", k0)
    s.rollout("C6", k0, "bugfixer", "v1", 5)
    s.patch("Q5", "C6", k0)  # the same patch again: a sample of its own
    s.rollout("C7", k0, "bugfixer", "v1", 6, parse_status="empty_output")
    # --- v1: TestWriter samples
    for n, task in enumerate(K[:5]):
        rollout, test = f"V{n}", f"H{n}"
        s.rollout(rollout, task, "testwriter", "v1", 0)
        s.test(test, rollout, task, f"tests/test_gen.py::test_h{n}")
        s.reward(
            f"R{test}",
            task,
            test,
            rollout,
            None,
            "v1",
            1.0,
            subject_kind="test",
            outcome="fails_before_passes_after",
        )
    s.rollout("V5", K[5], "testwriter", "v1", 0, parse_status="no_new_test")
    s.reward("RV5", K[5], "V5", "V5", None, "v1", 0.0, subject_kind="rollout", outcome="not_discriminating")
    return s.events
