"""SWE-bench 5.x grading rules, on status maps and RunResults (no sandbox needed)."""

from __future__ import annotations

import json

from vtforge.sandbox.api import Limits, RunResult, TestOutcome
from vtforge.sandbox.grading import (
    grade,
    lookup,
    resolution_rate,
    resolution_status,
    resolve_case,
    tests_status,
)

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
    assert report["tests_status"]["PASS_TO_PASS"] == {"success": P2P, "failure": []}  # maintained


def test_a_missing_or_failed_test_is_a_failure() -> None:
    missing = dict(ALL_PASS)
    del missing["t.py::test_old"]
    assert report_of(missing)["tests_status"]["PASS_TO_PASS"]["failure"] == ["t.py::test_old"]
    errored = report_of({**ALL_PASS, "t.py::test_fix_param[1]": "ERROR"})
    assert errored["tests_status"]["FAIL_TO_PASS"]["failure"] == ["t.py::test_fix_param[1]"]
    assert not errored["resolved"]


def test_only_truncated_parametrised_ids_match_by_prefix() -> None:
    statuses = {
        "t.py::test_long[a very long parameter id that the dataset cut]": "PASSED",
        "t.py::test_long[a very long parameter id, second]": "XFAIL",
        "t.py::test_mixed[x-1]": "PASSED",
        "t.py::test_mixed[x-2]": "FAILED",
        "t.py::test_foo_bar": "PASSED",
        "t.py::test_off[y-1]": "SKIPPED",
        "t.py::test_off[y-2]": "FAILED",
    }
    first = "t.py::test_long[a very long parameter id that the dataset cut]"
    assert resolve_case("t.py::test_long[a very long param", statuses) == first
    assert resolve_case("t.py::test_long[a very long param...", statuses) is None  # no "..." trimming
    assert resolve_case("t.py::test_mixed[x-", statuses) is None  # matches disagree: missing
    assert resolve_case("t.py::test_off[y-", statuses) == "t.py::test_off[y-1]"  # agree on not passing
    assert resolve_case("t.py::test_foo", statuses) is None  # balanced brackets: exact ids only
    assert resolve_case("t.py::test_mixed[x-1]", statuses) == "t.py::test_mixed[x-1]"  # exact ids win
    block = tests_status(
        ["t.py::test_foo", "t.py::test_long[a very long param"], ["t.py::test_off[y-"], statuses
    )
    assert block["FAIL_TO_PASS"] == {
        "success": ["t.py::test_long[a very long param"],
        "failure": ["t.py::test_foo"],
    }
    assert block["PASS_TO_PASS"] == {"success": ["t.py::test_off[y-"], "failure": []}  # its first is SKIPPED


def test_lookup_takes_a_function_node_for_its_parametrised_cases() -> None:
    """The self-play matrix asks for function-level nodes; grading never does this."""
    statuses = {"t.py::test_p[1]": "PASSED", "t.py::test_p[2]": "XFAIL", "t.py::test_q[1]": "SKIPPED"}
    statuses |= {"t.py::test_r[1]": "PASSED", "t.py::test_r[2]": "ERROR", "t.py::test_pp": "FAILED"}
    assert lookup("t.py::test_p", statuses) == "PASSED"
    assert lookup("t.py::test_q", statuses) == "SKIPPED"
    assert lookup("t.py::test_r", statuses) == "FAILED"
    assert lookup("t.py::test_pp", statuses) == "FAILED"
    assert lookup("t.py::test_pq", statuses) is None  # no longer borrows test_pp's or test_p's result
    assert lookup("t.py::test_p[", statuses) == "PASSED"  # truncated: the grading rule
    assert tests_status(["t.py::test_p"], [], statuses)["FAIL_TO_PASS"]["failure"] == ["t.py::test_p"]


def test_runs_without_a_usable_log_are_never_resolved() -> None:
    """As the harness: no usable log means patch_successfully_applied False and not resolved."""
    for status, code in (("invalid", 4), ("timeout", None), ("oom", None), ("killed", None)):
        report = report_of(ALL_PASS, status=status, exit_code=code)
        assert (report["resolved"], report["patch_successfully_applied"], report["status"]) == (
            False,
            False,
            status,
        )
    nothing_ran = grade({"instance_id": "a", "FAIL_TO_PASS": [], "PASS_TO_PASS": []}, result({}), "d")["a"]
    assert (nothing_ran["resolved"], nothing_ran["patch_successfully_applied"]) == (False, False)


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
    blank = grade(instance(), None, "\n")["x__y-1"]  # the harness runs it (and it does not apply)
    assert (blank["patch_is_None"], blank["patch_exists"], blank["resolved"]) == (False, True, False)


def test_lists_may_be_json_strings_or_lists_and_empty_lists_count_as_all() -> None:
    report = grade({"instance_id": "a", "FAIL_TO_PASS": F2P, "PASS_TO_PASS": "[]"}, result(ALL_PASS), "d")[
        "a"
    ]
    assert report["resolved"] is True
    assert resolution_rate(report["tests_status"]["PASS_TO_PASS"]) == 1.0
    assert resolution_status(report["tests_status"]) == "RESOLVED_FULL"
    block = tests_status(["a", "b"], [], {"a": "FAILED", "b": "PASSED"})
    assert resolution_rate(block["FAIL_TO_PASS"]) == 0.5 and resolution_status(block) == "RESOLVED_PARTIAL"
    assert block["FAIL_TO_FAIL"] == {"success": [], "failure": []} == block["PASS_TO_FAIL"]


def test_x_to_fail_lists_are_left_empty() -> None:
    """The harness does not compute FAIL_TO_FAIL / PASS_TO_FAIL (calculate_to_fail is off)."""
    report = grade(
        instance(FAIL_TO_FAIL='["t.py::test_old"]', PASS_TO_FAIL='["t.py::x"]'), result(ALL_PASS), "d"
    )
    block = report["x__y-1"]["tests_status"]
    assert block["FAIL_TO_FAIL"] == {"success": [], "failure": []}
    assert block["PASS_TO_FAIL"] == {"success": [], "failure": []}
