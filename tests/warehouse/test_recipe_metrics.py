"""The recipe's metrics on a hand-built stream (tests/warehouse/streams.py ``recipe_stream``), exactly:
localization recall per file kind, patch acceptance per BugFixer sample, fail-before-fix per
sampled task with a strict ``>``, and flaky tests."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.warehouse.conftest import config_here, emit, materialize_in_process
from tests.warehouse.streams import K, recipe_stream
from vtforge.trainers.gates import COMPARISONS, evaluate_gates
from vtforge.warehouse.reader import open_reader

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def con(module_workspace: Path):
    config = config_here()
    emit(config, recipe_stream())
    result = materialize_in_process(config)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["no_orphan_executions"] and checks["no_orphan_rewards"]
    reader = open_reader(config)
    yield reader
    reader.close()


def rows(con, sql: str) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def test_localizations_know_their_file_kind_and_what_they_are_measured_against(con) -> None:
    assert rows(con, "SELECT rollout_id, file_kind, gold_files FROM localizations ORDER BY 1") == [
        ("LS", "source", ["src/k1.py"]),
        ("LT", "test", ["tests/test_k1.py"]),  # self-play's test-file localization (target = test)
        ("LT5", "test", ["tests/test_k6.py"]),  # no test patch: its FAIL_TO_PASS tests' files
        ("LW", "test", ["tests/test_k1.py"]),  # a TestWriter rollout's localization
    ]
    assert rows(
        con, f"SELECT task_id, test_files FROM tasks WHERE task_id IN ('{K[0]}', '{K[5]}') ORDER BY 1"
    ) == [
        (K[0], ["tests/test_k1.py"]),
        (K[5], ["tests/test_k6.py"]),
    ]


def test_recall_is_per_file_kind(con) -> None:
    # Before: every localization against the gold patch's files: 1 of 3 perfect → 0.3333, gate failed.
    assert rows(
        con,
        "SELECT policy_version, file_kind, k, localizations, recall_at_k, all_found_at_k "
        "FROM telemetry_localization WHERE k IN (1, 5)",
    ) == [
        ("v0", "source", 1, 1, 1.0, 1.0),
        ("v0", "source", 5, 1, 1.0, 1.0),
        ("v0", "test", 1, 2, 1.0, 1.0),
        ("v0", "test", 5, 2, 1.0, 1.0),
        ("v1", "test", 1, 1, 1.0, 1.0),
        ("v1", "test", 5, 1, 1.0, 1.0),
    ]
    # the localizer's reward follows the same files (rollout_outcomes reads localizations.gold_files)
    assert rows(
        con, "SELECT rollout_id, reward FROM rollout_outcomes WHERE role = 'localizer' ORDER BY 1"
    ) == [("LS", 1.0), ("LT", 1.0), ("LT5", 1.0)]


def test_acceptance_counts_every_bugfixer_sample(con) -> None:
    # Before: only parsed samples had a patch_proposed event: v0 apply_rate 1/2 = 0.5 (gate passed).
    assert rows(
        con,
        "SELECT policy_version, samples, accepted, parse_failures, apply_failures, empty, not_tried, "
        "round(acceptance, 4), proposals, applied, round(apply_rate, 4) FROM telemetry_patches",
    ) == [
        ("v0", 3, 1, 1, 1, 0, 0, 0.3333, 2, 1, 0.5),
        ("v1", 7, 3, 0, 0, 3, 1, 0.5, 4, 3, 0.75),  # the untried sample is not judged
    ]


def test_test_outcomes_use_the_gold_run_and_never_count_a_flaky_test(con) -> None:
    assert rows(
        con,
        "SELECT test_id, fails_before, passes_after, flaky, results FROM test_outcomes "
        "WHERE policy_version = 'v0' ORDER BY 1",
    ) == [
        ("A1", True, True, False, 1),
        ("A1b", False, None, False, 1),
        ("A2", True, True, False, 0),
        ("A3", True, True, False, 0),
        # failed on every re-run on the base (reruns 2, not flaky), passed on the gold run
        ("A4", True, True, False, 2),
        # passed on the gold run only when re-run: flaky, so not fail-before-fix despite its reward
        ("F", False, None, True, 2),
    ]


def test_fail_before_fix_is_per_sampled_task(con) -> None:
    assert rows(
        con,
        "SELECT policy_version, tests, run_before_fix, round(fail_before_rate, 4), judged, "
        "fail_before_pass_after_rate, with_results, flake_rate, tasks_sampled, "
        "tasks_with_fail_before_pass_after, round(fail_before_fix_task_rate, 4) FROM telemetry_tests",
    ) == [
        ("v0", 6, 6, 0.6667, 4, 1.0, 4, 0.25, 5, 4, 0.8),
        ("v1", 5, 5, 1.0, 5, 1.0, 0, None, 6, 5, 0.8333),
    ]


def test_gates(con) -> None:
    # Before (v0): fail_before_fix_rate 5/6 tests and patch_acceptance 0.5 passed; localization 1/3 failed.
    assert rows(
        con,
        "SELECT policy_version, gate, threshold, round(value, 4), comparison, passed FROM curriculum_gates",
    ) == [
        ("v0", "fail_before_fix_rate", 0.8, 0.8, ">", False),  # exactly 80% is not "> 80%"
        ("v0", "localization_accuracy", 0.6, 1.0, ">=", True),
        ("v0", "patch_acceptance", 0.5, 0.3333, ">=", False),
        ("v1", "fail_before_fix_rate", 0.8, 0.8333, ">", True),
        ("v1", "patch_acceptance", 0.5, 0.5, ">=", True),  # the other gates keep >=
    ]
    # trainers/gates.py re-applies the config's thresholds with the warehouse's comparisons
    assert dict(rows(con, "SELECT DISTINCT gate, comparison FROM curriculum_gates")) == COMPARISONS
    thresholds = {"localization_accuracy": 0.6, "patch_acceptance": 0.5, "fail_before_fix_rate": 0.8}
    v0 = evaluate_gates(con, thresholds, "v0")
    assert [(r.gate, r.value, r.comparison, r.passed) for r in v0.results] == [
        ("localization_accuracy", 1.0, ">=", True),
        ("patch_acceptance", 1 / 3, ">=", False),
        ("fail_before_fix_rate", 0.8, ">", False),
    ]
    v1 = evaluate_gates(con, thresholds, "v1")
    assert [(r.gate, r.passed, r.note) for r in v1.results] == [
        ("localization_accuracy", False, "no telemetry"),
        ("patch_acceptance", True, ""),
        ("fail_before_fix_rate", True, ""),
    ]


def test_gates_without_a_comparison_column_use_the_same_comparisons(tmp_path: Path) -> None:
    """A warehouse built before the column (or vtforge/fixtures/warehouse.py's) still compares per gate."""
    db = duckdb.connect(str(tmp_path / "w.duckdb"))
    db.execute(
        "CREATE TABLE curriculum_gates (gate VARCHAR, threshold DOUBLE, value DOUBLE, passed BOOLEAN, "
        "policy_version VARCHAR, stage VARCHAR)"
    )
    db.executemany(
        "INSERT INTO curriculum_gates VALUES (?, ?, ?, true, 'v', 'rl')",
        [
            ("fail_before_fix_rate", 0.8, 0.8),
            ("patch_acceptance", 0.5, 0.5),
            ("localization_accuracy", 0.6, 0.6),
        ],
    )
    report = evaluate_gates(
        db, {"fail_before_fix_rate": 0.8, "patch_acceptance": 0.5, "localization_accuracy": 0.6}, "v"
    )
    db.close()
    assert {r.gate: r.passed for r in report.results} == {
        "fail_before_fix_rate": False,
        "patch_acceptance": True,
        "localization_accuracy": True,
    }
