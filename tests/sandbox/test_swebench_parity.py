"""Parity with the SWE-bench harness (``swebench`` 5.x, a dev dependency): same grading, same run report.

Our ``vtforge.sandbox.grading`` re-implements the harness's rules so that the runtime does not depend on
it; these tests feed both the same inputs and require the same answers: the ``tests_status``
block and the resolution of named cases and of generated status maps, and ``make_run_report``
reading our run folder counts exactly what our run report counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swebench.harness.grading import get_eval_tests_report, get_resolution_status
from swebench.harness.reporting import make_run_report

from vtforge.sandbox.api import Limits, RunResult, TestOutcome
from vtforge.sandbox.evaluate import record, run_dir_of, summarise
from vtforge.sandbox.grading import is_resolved, resolution_status, tests_status

STATUSES = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL")


def theirs(f2p: list[str], p2p: list[str], status_map: dict[str, str]) -> dict:
    return get_eval_tests_report(status_map, {"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p})


def assert_same(f2p: list[str], p2p: list[str], status_map: dict[str, str]) -> dict:
    ours = tests_status(f2p, p2p, status_map)
    reference = theirs(f2p, p2p, status_map)
    assert ours == reference
    assert resolution_status(ours) == get_resolution_status(reference)
    assert is_resolved(ours) is (get_resolution_status(reference) == "RESOLVED_FULL")
    return ours


# (name, FAIL_TO_PASS, PASS_TO_PASS, status map, expected F2P block, expected P2P block, resolved)
CASES = [
    (
        "f2p-missing-is-not-a-longer-ids-pass",
        ["t.py::test_foo"],
        [],
        {"t.py::test_foo_bar": "PASSED"},
        {"success": [], "failure": ["t.py::test_foo"]},
        {"success": [], "failure": []},
        False,
    ),
    (
        "p2p-missing-is-not-a-longer-ids-pass",
        [],
        ["t.py::test_foo"],
        {"t.py::test_foo_bar": "PASSED"},
        {"success": [], "failure": []},
        {"success": [], "failure": ["t.py::test_foo"]},
        False,
    ),
    (
        "dotted-ids-are-not-trimmed",
        ["t.py::test_long[abc..."],
        ["t.py::test_a..."],
        {"t.py::test_long[abcdef]": "PASSED", "t.py::test_abc": "PASSED"},
        {"success": [], "failure": ["t.py::test_long[abc..."]},
        {"success": [], "failure": ["t.py::test_a..."]},
        False,
    ),
    (
        "skipped-p2p-is-maintained",
        ["t.py::test_fix"],
        ["t.py::test_old"],
        {"t.py::test_fix": "PASSED", "t.py::test_old": "SKIPPED"},
        {"success": ["t.py::test_fix"], "failure": []},
        {"success": ["t.py::test_old"], "failure": []},
        True,
    ),
    (
        "skipped-f2p-fails",
        ["t.py::test_fix"],
        [],
        {"t.py::test_fix": "SKIPPED"},
        {"success": [], "failure": ["t.py::test_fix"]},
        {"success": [], "failure": []},
        False,
    ),
    (
        "xfail-passes",
        ["t.py::test_fix"],
        ["t.py::test_old"],
        {"t.py::test_fix": "XFAIL", "t.py::test_old": "XFAIL"},
        {"success": ["t.py::test_fix"], "failure": []},
        {"success": ["t.py::test_old"], "failure": []},
        True,
    ),
    (
        "truncated-parametrised-id-agreeing",
        ["t.py::test_x[a-"],
        [],
        {"t.py::test_x[a-1]": "PASSED", "t.py::test_x[a-2]": "XFAIL"},
        {"success": ["t.py::test_x[a-"], "failure": []},
        {"success": [], "failure": []},
        True,
    ),
    (
        "truncated-parametrised-id-disagreeing",
        ["t.py::test_x[a-"],
        ["t.py::test_y[b-"],
        {"t.py::test_x[a-1]": "PASSED", "t.py::test_x[a-2]": "FAILED", "t.py::test_y[b-1]": "PASSED"},
        {"success": [], "failure": ["t.py::test_x[a-"]},
        {"success": ["t.py::test_y[b-"], "failure": []},
        False,
    ),
    (
        "truncated-p2p-whose-first-match-skipped",
        ["t.py::test_fix"],
        ["t.py::test_y[b-"],
        {"t.py::test_fix": "PASSED", "t.py::test_y[b-1]": "SKIPPED", "t.py::test_y[b-2]": "FAILED"},
        {"success": ["t.py::test_fix"], "failure": []},
        {"success": ["t.py::test_y[b-"], "failure": []},
        True,
    ),
    (
        "empty-lists",
        [],
        [],
        {},
        {"success": [], "failure": []},
        {"success": [], "failure": []},
        True,
    ),
]


@pytest.mark.parametrize(("f2p", "p2p", "status_map", "f2p_block", "p2p_block", "resolved"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_named_cases_grade_as_swebench(
    f2p: list[str],
    p2p: list[str],
    status_map: dict[str, str],
    f2p_block: dict,
    p2p_block: dict,
    resolved: bool,
) -> None:
    ours = assert_same(f2p, p2p, status_map)
    assert ours["FAIL_TO_PASS"] == f2p_block
    assert ours["PASS_TO_PASS"] == p2p_block
    assert ours["FAIL_TO_FAIL"] == {"success": [], "failure": []} == ours["PASS_TO_FAIL"]
    assert is_resolved(ours) is resolved


# ids built to collide: shared prefixes, parametrised cases, unbalanced brackets, trailing "..."
BASES = ("t.py::test_a", "t.py::test_ab", "t.py::T::test_a")
PARAMS = st.one_of(
    st.sampled_from(("", "[1]", "[1-a]", "[1-b]", "[1-a-b]", "[a]", "...")), st.text("[]-1a.", max_size=5)
)
ids = st.builds(lambda base, param: base + param, st.sampled_from(BASES), PARAMS)
# one parametrised test's cases, so that truncated ids match several run ids that may disagree
cases = st.builds(lambda param: "t.py::test_a[" + param, st.text("1-a]", min_size=1, max_size=3))
status_maps = st.one_of(
    st.dictionaries(ids, st.sampled_from(STATUSES), max_size=8),
    st.dictionaries(st.one_of(cases, ids), st.sampled_from(STATUSES), min_size=2, max_size=8),
)


@st.composite
def expected_ids(draw: st.DrawFn, status_map: dict[str, str]) -> str:
    """An id the dataset expects: one that ran, a truncation of one that ran, or a fresh one."""
    known = sorted(status_map)
    kind = draw(st.sampled_from(("ran", "truncated", "truncated", "fresh") if known else ("fresh",)))
    if kind == "fresh":
        return draw(ids)
    name = draw(st.sampled_from(known))
    if kind == "ran":
        return name
    low = name.index("[") + 1 if "[" in name and draw(st.booleans()) else len("t.py::test_")
    cut = draw(st.integers(min_value=min(low, len(name)), max_value=len(name)))
    return name[:cut] + draw(st.sampled_from(("", "", "...", "[")))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), status_map=status_maps)
def test_generated_status_maps_grade_as_swebench(data: st.DataObject, status_map: dict[str, str]) -> None:
    f2p = data.draw(st.lists(expected_ids(status_map), max_size=5), label="FAIL_TO_PASS")
    p2p = data.draw(st.lists(expected_ids(status_map), max_size=5), label="PASS_TO_PASS")
    assert_same(f2p, p2p, status_map)


# --- the run folder ------------------------------------------------------------------------------

MODEL = "org/model-7b"
RUN_ID = "parity-run"


def ran(status: str, tests: dict[str, str], exit_code: int | None = 0) -> RunResult:
    outcomes = {name: TestOutcome(name, s) for name, s in tests.items()}  # type: ignore[arg-type]
    return RunResult(
        status=status,  # type: ignore[arg-type]
        backend="local",
        command=["pytest"],
        limits=Limits(),
        exit_code=exit_code,
        tests=outcomes,
        error=None if status == "completed" else status,
    )


def instance(instance_id: str) -> dict:
    return {
        "instance_id": instance_id,
        "repo_dir": "/nonexistent",
        "FAIL_TO_PASS": json.dumps(["t.py::test_fix"]),
        "PASS_TO_PASS": ["t.py::test_old"],
    }


GOOD = {"t.py::test_fix": "PASSED", "t.py::test_old": "PASSED"}
# instance id -> (model_patch, run result or None, or "no prediction")
PLAN: dict[str, tuple[str | None, RunResult | None] | str] = {
    "a__resolved-1": ("diff a", ran("completed", GOOD)),
    "b__unresolved-1": ("diff b", ran("completed", {**GOOD, "t.py::test_fix": "FAILED"}, exit_code=1)),
    "c__skipped-p2p-1": ("diff c", ran("completed", {**GOOD, "t.py::test_old": "SKIPPED"})),
    "d__empty-1": ("", None),
    "e__none-1": (None, None),
    "f__no-prediction-1": "no prediction",
    "g__apply-failed-1": ("not a diff", ran("patch_apply_failed", {}, exit_code=97)),
    "h__timeout-1": ("diff h", ran("timeout", {}, exit_code=None)),
    "i__infra-1": ("diff i", ran("infra_failure", {}, exit_code=None)),
    "j__invalid-1": ("diff j", ran("invalid", GOOD, exit_code=4)),
    "k__collected-nothing-1": ("diff k", ran("completed", {}, exit_code=5)),
}


def test_swebench_counts_our_run_folder_as_our_run_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_dir = tmp_path / "evaluation"
    instances = [instance(i) for i in PLAN]
    predictions = [
        {"instance_id": i, "model_name_or_path": MODEL, "model_patch": plan[0]}
        for i, plan in PLAN.items()
        if plan != "no prediction"
    ]
    by_id = {i["instance_id"]: i for i in instances}
    run_dir = run_dir_of(report_dir, RUN_ID)
    # a report.json left by an earlier run of the same id must not be read as this run's
    stale = run_dir / "org__model-7b" / "g__apply-failed-1" / "report.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"g__apply-failed-1": {"resolved": True}}))
    outcomes = [
        record(by_id[p["instance_id"]], p, PLAN[p["instance_id"]][1], run_dir)  # type: ignore[index]
        for p in predictions
    ]
    summary = summarise(outcomes, instances, predictions, RUN_ID)[MODEL]
    ours_path = summary.write(report_dir)
    ours = json.loads(ours_path.read_text())

    monkeypatch.chdir(report_dir)
    theirs_path = make_run_report(
        {p["instance_id"]: p for p in predictions}, instances, RUN_ID, report_dir=str(tmp_path / "swebench")
    )
    reference = json.loads(Path(theirs_path).read_text())

    assert ours_path.name == Path(theirs_path).name == "org__model-7b.parity-run.json"
    assert list(ours) == list(reference)  # same keys, same order
    for key in (
        "total_instances",
        "submitted_instances",
        "completed_instances",
        "resolved_instances",
        "unresolved_instances",
        "empty_patch_instances",
        "error_instances",
        "submitted_ids",
        "completed_ids",
        "incomplete_ids",
        "resolved_ids",
        "unresolved_ids",
        "empty_patch_ids",
        "error_ids",
        "schema_version",
    ):
        assert ours[key] == reference[key], key
    assert ours["resolved_ids"] == ["a__resolved-1", "c__skipped-p2p-1"]
    assert ours["unresolved_ids"] == ["b__unresolved-1", "j__invalid-1", "k__collected-nothing-1"]
    assert ours["error_ids"] == ["g__apply-failed-1", "h__timeout-1", "i__infra-1"]
    assert ours["empty_patch_ids"] == ["d__empty-1", "e__none-1"]
    assert ours["incomplete_ids"] == ["f__no-prediction-1"]
    assert (ours["total_instances"], ours["submitted_instances"], ours["completed_instances"]) == (11, 10, 5)
    # our own verdicts on why a run may not be the patch's fault (the harness matches log patterns)
    assert ours["infra_failure_ids"] == ["i__infra-1"]
    assert ours["ambiguous_failure_ids"] == ["h__timeout-1", "j__invalid-1", "k__collected-nothing-1"]
    assert ours["failure_reasons"] == {
        "h__timeout-1": "timeout",
        "i__infra-1": "infra_failure",
        "j__invalid-1": "invalid",
        "k__collected-nothing-1": "no_test_results",
    }
    folder = run_dir / "org__model-7b"
    assert sorted(p.name for p in (folder / "a__resolved-1").iterdir()) == [
        "patch.diff",
        "report.json",
        "run_instance.log",
        "test_output.txt",
    ]
    assert sorted(p.name for p in (folder / "g__apply-failed-1").iterdir()) == [
        "patch.diff",
        "run_instance.log",
    ]
    report = json.loads((folder / "j__invalid-1" / "report.json").read_text())["j__invalid-1"]
    assert (report["patch_successfully_applied"], report["resolved"], report["status"]) == (
        False,
        False,
        "invalid",
    )
