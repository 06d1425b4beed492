"""SWE-bench 5.x grading of one run: FAIL_TO_PASS / PASS_TO_PASS success and failure lists.

The rules are those of ``swebench.harness.grading`` (5.0.2), re-implemented here so that the
runtime does not depend on the harness (it pulls modal, docker, pre-commit, …);
``tests/sandbox/test_swebench_parity.py`` runs both on the same status maps and requires identical
answers.

- an expected id is looked up exactly; only an id with more ``[`` than ``]`` (a parametrised id the
  dataset truncated) falls back to the run ids starting with it, and only when all of those agree on
  passing (PASSED/XFAIL) or not — the first of them then stands for it;
- FAIL_TO_PASS: success when PASSED or XFAIL; failure when missing, FAILED, ERROR or SKIPPED;
- PASS_TO_PASS: success when PASSED, XFAIL or SKIPPED (a skipped test is not a regression);
  failure when missing, FAILED or ERROR;
- FAIL_TO_FAIL / PASS_TO_FAIL are present and empty (the harness does not compute them);
- resolved = FULL resolution: both FAIL_TO_PASS and PASS_TO_PASS rates are 1 (an empty list
  counts as 1), and only for a run whose test log was usable (``patch_successfully_applied``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from vtforge.sandbox.api import RunResult

PASS_STATUSES = frozenset({"PASSED", "XFAIL"})
FAIL_STATUSES = frozenset({"FAILED", "ERROR"})
CATEGORIES = ("FAIL_TO_PASS", "PASS_TO_PASS", "FAIL_TO_FAIL", "PASS_TO_FAIL")
ResolutionStatus = Literal["RESOLVED_FULL", "RESOLVED_PARTIAL", "RESOLVED_NO"]


def test_ids(value: Any) -> list[str]:
    """A dataset's test list: a JSON string (as SWE-bench stores it) or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.strip()
        return [str(v) for v in json.loads(value)] if value else []
    return [str(v) for v in value]


def resolve_case(test_id: str, status_map: Mapping[str, str]) -> str | None:
    """The run id that stands for ``test_id``: itself, else (truncated parametrised ids only) a prefix match.

    Truncated ids are a known dataset defect (SWE-bench_Verified cuts some parameter ids); the
    fallback is limited to ids with an unclosed ``[`` so that ``test_foo`` never borrows
    ``test_foo_bar``'s result, and refuses when the candidates disagree on passing.
    """
    if test_id in status_map:
        return test_id
    if test_id.count("[") <= test_id.count("]"):
        return None
    matches = [name for name in status_map if name.startswith(test_id)]
    if matches and len({status_map[name] in PASS_STATUSES for name in matches}) == 1:
        return matches[0]
    return None


def lookup(test_id: str, status_map: Mapping[str, str]) -> str | None:
    """The status of a node id in a run, for callers that run function-level ids (the self-play matrix).

    Exact id, else the grading rule (``resolve_case``), else the node's parametrised cases
    (``test_id[...]``) taken together: PASSED if all passed, FAILED if any failed, else SKIPPED.
    None when nothing in the run stands for it. Grading itself never uses the last step.
    """
    key = resolve_case(test_id, status_map)
    if key is not None:
        return status_map[key]
    cases = [status for name, status in status_map.items() if name.startswith(test_id + "[")]
    if not cases:
        return None
    if all(s in PASS_STATUSES for s in cases):
        return "PASSED"
    if any(s in FAIL_STATUSES for s in cases):
        return "FAILED"
    return "SKIPPED"


def _split(
    tests: Iterable[str], status_map: Mapping[str, str], *, skipped_passes: bool
) -> dict[str, list[str]]:
    success: list[str] = []
    failure: list[str] = []
    for test in tests:
        key = resolve_case(test, status_map)
        status = None if key is None else status_map[key]
        if status in PASS_STATUSES or (skipped_passes and status == "SKIPPED"):
            success.append(test)
        elif status is None or status in FAIL_STATUSES or status == "SKIPPED":
            failure.append(test)
        # any other status (not produced by our runner) lands in neither list, as in the harness
    return {"success": success, "failure": failure}


def tests_status(
    fail_to_pass: Iterable[str], pass_to_pass: Iterable[str], status_map: Mapping[str, str]
) -> dict[str, dict[str, list[str]]]:
    """SWE-bench's ``tests_status`` block from a ``{node_id: status}`` map (x-to-fail lists empty)."""
    return {
        "FAIL_TO_PASS": _split(fail_to_pass, status_map, skipped_passes=False),
        "PASS_TO_PASS": _split(pass_to_pass, status_map, skipped_passes=True),
        "FAIL_TO_FAIL": {"success": [], "failure": []},
        "PASS_TO_FAIL": {"success": [], "failure": []},
    }


def resolution_rate(block: Mapping[str, list[str]]) -> float:
    """SWE-bench's per-category rate: success / (success + failure), 1.0 when both are empty."""
    total = len(block["success"]) + len(block["failure"])
    return 1.0 if total == 0 else len(block["success"]) / total


def resolution_status(status: Mapping[str, Mapping[str, list[str]]]) -> ResolutionStatus:
    """FULL when both rates are 1; PARTIAL when FAIL_TO_PASS is strictly between 0 and 1 and P2P is 1."""
    f2p = resolution_rate(status["FAIL_TO_PASS"])
    p2p = resolution_rate(status["PASS_TO_PASS"])
    if f2p == 1 and p2p == 1:
        return "RESOLVED_FULL"
    if 0 < f2p < 1 and p2p == 1:
        return "RESOLVED_PARTIAL"
    return "RESOLVED_NO"


def is_resolved(status: Mapping[str, Mapping[str, list[str]]]) -> bool:
    """FULL resolution (what ``report.json``'s ``resolved`` means)."""
    return resolution_status(status) == "RESOLVED_FULL"


def log_usable(result: RunResult) -> bool:
    """Whether the run left per-test results to grade, as the harness's ``get_logs_eval`` decides.

    Only a run that completed with at least one test result qualifies: a timeout, a kill, a crash
    (``invalid``) or a run that collected nothing has no log the harness would grade.
    """
    return result.status == "completed" and bool(result.tests)


def grade(
    instance: Mapping[str, Any], result: RunResult | None, model_patch: str | None = ""
) -> dict[str, Any]:
    """The SWE-bench ``report.json`` of one prediction: ``{instance_id: {...}}``.

    ``result`` is None when nothing ran; ``model_patch`` None means the prediction had no patch at
    all (``patch_is_None``), "" an empty one. As in the harness, ``patch_successfully_applied``
    means "the patch applied and the tests left a usable log", and ``resolved`` needs it. Beyond the
    harness's keys: ``status`` (the sandbox's run status, ``not_run`` when nothing ran) and
    ``tests_status`` even when the log was unusable (graded on the results that exist).
    """
    instance_id = str(instance["instance_id"])
    f2p = test_ids(instance.get("FAIL_TO_PASS"))
    p2p = test_ids(instance.get("PASS_TO_PASS"))
    report: dict[str, Any] = {
        "patch_is_None": model_patch is None,
        "patch_exists": bool(model_patch),
        "patch_successfully_applied": False,
        "resolved": False,
        "infra_failure": False,
        "status": "not_run" if result is None else result.status,
    }
    if result is None:
        report["tests_status"] = tests_status(f2p, p2p, {})
        return {instance_id: report}
    report["infra_failure"] = result.infra_failure
    report["patch_successfully_applied"] = report["patch_exists"] and log_usable(result)
    status_map = result.status_map() if result.patch_applied else {}
    block = tests_status(f2p, p2p, status_map)
    report["tests_status"] = block
    report["resolved"] = bool(report["patch_successfully_applied"] and is_resolved(block))
    return {instance_id: report}


# names starting with "test" are not pytest tests when imported into a test module
test_ids.__test__ = False  # type: ignore[attr-defined]
tests_status.__test__ = False  # type: ignore[attr-defined]
