"""SWE-bench 5.x grading rules, on status maps and RunResults (no sandbox needed)."""

from __future__ import annotations

import json

from sandbox.api import Limits, RunResult, TestOutcome
from sandbox.grading import grade, lookup, resolution_rate, tests_status

F2P = ["t.py::test_fix", "t.py::test_fix_param[1]"]
P2P = ["t.py::test_old", "t.py::test_skipped_before"]


def result(statuses: dict[str, str], status: str = "completed", exit_code: int | None = 0) -> RunResult:
    tests = {name: TestOutcome(name, s) for name, s in statuses.items()}  # type: ignore[arg-type]
    return RunResult(
        status=status, backend="local", command=["pytest"], limits=Limits(), exit_code=exit_code, tests=tests
    )  # type: ignore[arg-type]


def instance(**extra) -> dict:
    return {
        "instance_id": "x__y-1",
        "FAIL_TO_PASS": json.dumps(F2P),
        "PASS_TO_PASS": json.dumps(P2P),
        **extra,
    }


def report_of(statuses: dict[str, str], **kw) -> dict:
    return grade(instance(), result(statuses, **kw), "diff --git a/x b/x")["x__y-1"]


ALL_PASS = {
    "t.py::test_fix": "PASSED",
    "t.py::test_fix_param[1]": "XFAIL",
    "t.py::test_old": "PASSED",
    "t.py::test_skipped_before": "PASSED",
}


def test_every_f2p_and_p2p_passing_is_resolved() -> None:
    report = report_of(ALL_PASS)
    assert report["resolved"] is True
    assert report["patch_successfully_applied"] is True
    assert report["tests_status"]["FAIL_TO_PASS"] == {"success": F2P, "failure": []}
    assert report["tests_status"]["PASS_TO_PASS"] == {"success": P2P, "failure": []}
    assert set(report["tests_status"]) == {"FAIL_TO_PASS", "PASS_TO_PASS", "FAIL_TO_FAIL", "PASS_TO_FAIL"}


def test_a_skipped_f2p_is_a_failure() -> None:
    report = report_of({**ALL_PASS, "t.py::test_fix": "SKIPPED"})
    assert report["resolved"] is False
    assert report["tests_status"]["FAIL_TO_PASS"]["failure"] == ["t.py::test_fix"]


def test_a_skipped_p2p_is_not_a_regression() -> None:
    report = report_of({**ALL_PASS, "t.py::test_skipped_before": "SKIPPED"})
    assert report["resolved"] is True
    block = report["tests_status"]["PASS_TO_PASS"]
    assert "t.py::test_skipped_before" not in block["failure"] + block["success"]


def test_a_missing_or_failed_test_is_a_failure() -> None:
    missing = dict(ALL_PASS)
    del missing["t.py::test_old"]
    assert report_of(missing)["tests_status"]["PASS_TO_PASS"]["failure"] == ["t.py::test_old"]
    errored = report_of({**ALL_PASS, "t.py::test_fix_param[1]": "ERROR"})
    assert errored["tests_status"]["FAIL_TO_PASS"]["failure"] == ["t.py::test_fix_param[1]"]
    assert not errored["resolved"]


def test_truncated_ids_match_by_prefix() -> None:
    statuses = {
        "t.py::test_long[a very long parameter id that the dataset cut]": "PASSED",
        "t.py::test_long[a very long parameter id, second]": "PASSED",
        "t.py::test_mixed[x-1]": "PASSED",
        "t.py::test_mixed[x-2]": "FAILED",
    }
    assert lookup("t.py::test_long[a very long param", statuses) == "PASSED"
    assert lookup("t.py::test_long[a very long param...", statuses) == "PASSED"
    assert lookup("t.py::test_mixed[x-", statuses) == "FAILED"
    assert lookup("t.py::test_absent", statuses) is None
    assert lookup("t.py::test_mixed[x-1]", statuses) == "PASSED"  # exact ids win


def test_invalid_and_killed_runs_are_never_resolved() -> None:
    assert report_of(ALL_PASS, status="invalid", exit_code=4)["resolved"] is False
    assert report_of(ALL_PASS, status="timeout", exit_code=None)["resolved"] is False


def test_patch_apply_failure_and_infra_failure_are_apart() -> None:
    failed = report_of({}, status="patch_apply_failed", exit_code=97)
    assert failed["patch_successfully_applied"] is False and failed["infra_failure"] is False
    assert failed["tests_status"]["FAIL_TO_PASS"]["failure"] == F2P
    infra = report_of({}, status="infra_failure", exit_code=None)
    assert infra["infra_failure"] is True and infra["resolved"] is False


def test_no_patch_and_empty_patch() -> None:
    none = grade(instance(), None, None)["x__y-1"]
    assert (none["patch_is_None"], none["patch_exists"], none["resolved"]) == (True, False, False)
    empty = grade(instance(), None, "")["x__y-1"]
    assert (empty["patch_is_None"], empty["patch_exists"], empty["resolved"]) == (False, False, False)


def test_lists_may_be_json_strings_or_lists_and_empty_lists_count_as_all() -> None:
    report = grade({"instance_id": "a", "FAIL_TO_PASS": F2P, "PASS_TO_PASS": "[]"}, result(ALL_PASS), "d")[
        "a"
    ]
    assert report["resolved"] is True
    assert resolution_rate(report["tests_status"]["PASS_TO_PASS"]) == 1.0
    block = tests_status(["a"], [], {"a": "FAILED"}, fail_to_fail=["b"], pass_to_fail=["c"])
    assert block["FAIL_TO_FAIL"]["failure"] == ["b"] and block["PASS_TO_FAIL"]["failure"] == ["c"]
    assert resolution_rate(block["FAIL_TO_PASS"]) == 0.0
