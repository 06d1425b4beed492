"""SWE-bench 5.x grading of one run: FAIL_TO_PASS / PASS_TO_PASS success and failure lists.

The rules, as SWE-bench applies them (``swebench.harness.grading``), plus the two points the
harness leaves to its log parsers, made explicit here:

- a test *passes* when its status is PASSED or XFAIL; it *fails* when FAILED or ERROR, or when it
  is missing from the run (a test that never ran cannot have passed);
- FAIL_TO_PASS: a SKIPPED test is a failure (the fix was not shown to work);
- PASS_TO_PASS: a SKIPPED test is not a regression (it lands in neither list);
- an expected id that is not in the run is matched by prefix (datasets truncate long
  parametrised ids, sometimes ending them with ``...``): every run id starting with it counts,
  and the expected test passes only if all of them passed;
- resolved = every FAIL_TO_PASS and every PASS_TO_PASS passes (an empty list counts as all);
- a run that is ``invalid`` (non-zero exit, no parsed failure), a patch that did not apply, or a
  run that was killed, is not resolved; ``infra_failure`` is reported apart (``infra_failure``
  true) so it is never counted against the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.api import RunResult

PASS_STATUSES = frozenset({"PASSED", "XFAIL"})
FAIL_STATUSES = frozenset({"FAILED", "ERROR"})
CATEGORIES = ("FAIL_TO_PASS", "PASS_TO_PASS", "FAIL_TO_FAIL", "PASS_TO_FAIL")


def test_ids(value: Any) -> list[str]:
    """A dataset's test list: a JSON string (as SWE-bench stores it) or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.strip()
        return [str(v) for v in json.loads(value)] if value else []
    return [str(v) for v in value]


def lookup(test_id: str, status_map: Mapping[str, str]) -> str | None:
    """The status of ``test_id`` in a run: exact id, else by prefix (truncated ids); None if absent."""
    if test_id in status_map:
        return status_map[test_id]
    prefix = test_id[:-3] if test_id.endswith("...") else test_id
    matches = [status for name, status in status_map.items() if name.startswith(prefix)]
    if not matches:
        return None
    if all(s in PASS_STATUSES for s in matches):
        return "PASSED"
    if any(s in FAIL_STATUSES for s in matches):
        return "FAILED"
    return "SKIPPED"


def _split(
    tests: Iterable[str], status_map: Mapping[str, str], *, skipped_fails: bool
) -> dict[str, list[str]]:
    success: list[str] = []
    failure: list[str] = []
    for test in tests:
        status = lookup(test, status_map)
        if status in PASS_STATUSES:
            success.append(test)
        elif status is None or status in FAIL_STATUSES or skipped_fails:
            failure.append(test)
    return {"success": success, "failure": failure}


def tests_status(
    fail_to_pass: Iterable[str],
    pass_to_pass: Iterable[str],
    status_map: Mapping[str, str],
    fail_to_fail: Iterable[str] = (),
    pass_to_fail: Iterable[str] = (),
) -> dict[str, dict[str, list[str]]]:
    """SWE-bench's ``tests_status`` block from a ``{node_id: status}`` map."""
    return {
        "FAIL_TO_PASS": _split(fail_to_pass, status_map, skipped_fails=True),
        "PASS_TO_PASS": _split(pass_to_pass, status_map, skipped_fails=False),
        "FAIL_TO_FAIL": _split(fail_to_fail, status_map, skipped_fails=False),
        "PASS_TO_FAIL": _split(pass_to_fail, status_map, skipped_fails=False),
    }


def is_resolved(status: Mapping[str, Mapping[str, list[str]]]) -> bool:
    """FULL resolution: no FAIL_TO_PASS and no PASS_TO_PASS failure."""
    return not status["FAIL_TO_PASS"]["failure"] and not status["PASS_TO_PASS"]["failure"]


def resolution_rate(block: Mapping[str, list[str]]) -> float:
    """SWE-bench's per-category rate: success / (success + failure), 1.0 when both are empty."""
    total = len(block["success"]) + len(block["failure"])
    return 1.0 if total == 0 else len(block["success"]) / total


def grade(
    instance: Mapping[str, Any], result: RunResult | None, model_patch: str | None = ""
) -> dict[str, Any]:
    """The SWE-bench ``report.json`` of one prediction: ``{instance_id: {...}}``.

    ``result`` is None when nothing ran (no patch); ``model_patch`` None means the prediction had
    no patch at all (``patch_is_None``), "" an empty one.
    """
    instance_id = str(instance["instance_id"])
    f2p = test_ids(instance.get("FAIL_TO_PASS"))
    p2p = test_ids(instance.get("PASS_TO_PASS"))
    f2f = test_ids(instance.get("FAIL_TO_FAIL"))
    p2f = test_ids(instance.get("PASS_TO_FAIL"))
    report: dict[str, Any] = {
        "patch_is_None": model_patch is None,
        "patch_exists": bool(model_patch and model_patch.strip()),
        "patch_successfully_applied": False,
        "resolved": False,
        "infra_failure": False,
        "status": "not_run" if result is None else result.status,
    }
    if result is None:
        report["tests_status"] = tests_status(f2p, p2p, {}, f2f, p2f)
        return {instance_id: report}
    report["infra_failure"] = result.infra_failure
    report["patch_successfully_applied"] = result.patch_applied and report["patch_exists"]
    status_map = result.status_map() if result.patch_applied else {}
    block = tests_status(f2p, p2p, status_map, f2f, p2f)
    report["tests_status"] = block
    ran_cleanly = result.status == "completed"
    report["resolved"] = bool(report["patch_successfully_applied"] and ran_cleanly and is_resolved(block))
    return {instance_id: report}


# names starting with "test" are not pytest tests when imported into a test module
test_ids.__test__ = False  # type: ignore[attr-defined]
tests_status.__test__ = False  # type: ignore[attr-defined]
