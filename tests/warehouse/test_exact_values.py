"""Every dataset and telemetry row of the hand-built stream (tests/warehouse/streams.py), exactly."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.warehouse.conftest import config_here, emit, materialize_in_process
from tests.warehouse.streams import G1_NAME, T1, T1_F2P, T1_TEST_PATCH, T2, hand_stream
from vtforge.warehouse.reader import open_reader

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def con(module_workspace: Path):
    config = config_here()
    emit(config, hand_stream())
    result = materialize_in_process(config)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "unique_event_ids": True,
        "known_schema_versions": True,
        "raw_events_fresh": False,  # the stream is dated January 2026: the freshness check warns
        "curated_fresh": True,  # … but the curated tables hold every landed file
        "no_orphan_executions": True,
        "no_orphan_rewards": True,
        "exports_match_manifests": True,
    }
    reader = open_reader(config)
    yield reader
    reader.close()


def rows(con, sql: str) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def test_curated_tables_have_one_row_per_entity(con) -> None:
    counts = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in (
            "tasks",
            "rollouts",
            "localizations",
            "patches",
            "tests",
            "executions",
            "rewards",
            "selections",
            "training_steps",
            "evaluations",
            "agent_steps",
            "events",
            "quarantine",
        )
    }
    assert counts == {
        "tasks": 2,
        "rollouts": 10,
        "localizations": 3,
        "patches": 4,
        "tests": 2,
        "executions": 5,
        "rewards": 3,
        "selections": 1,
        "training_steps": 2,
        "evaluations": 1,
        "agent_steps": 0,
        "events": 34,
        "quarantine": 0,
    }
    assert rows(con, "SELECT task_id, list_sort(gold_files), split FROM tasks ORDER BY 1") == [
        (T1, ["a.py", "b.py"], "train"),
        (T2, ["c.py"], "eval"),
    ]
    assert rows(
        con, "SELECT patch_id, rollout_id, proposals, applied, policy_version FROM patches ORDER BY 1"
    ) == [
        ("P1", "B1", 1, True, "v0"),
        ("P2", "B2", 2, True, "v0"),
        ("P3", "B3", 1, False, "v1"),
        ("P4", "B5", 1, True, "v1"),
    ]
    assert rows(con, "SELECT policy_version, version_index FROM policy_versions ORDER BY 2") == [
        ("v0", 0),
        ("v1", 1),
    ]
    assert rows(
        con, "SELECT execution_id, rollout_id, n_passed, n_failed, n_flaky FROM executions ORDER BY 1"
    ) == [
        ("E0", "W1", 0, 1, 0),
        ("E1", "B1", 2, 1, 0),
        ("E2", "B2", 3, 0, 0),
        ("E4", "B5", 0, 1, 0),
        ("E5", "W2", 1, 0, 1),
    ]


def test_rollout_outcomes(con) -> None:
    assert rows(con, "SELECT rollout_id, reward, success FROM rollout_outcomes ORDER BY 1") == [
        ("B1", 0.0, False),
        ("B2", 1.0, True),
        ("B3", None, None),
        ("B4", 1.0, True),
        ("B5", 0.0, False),
        ("GL", 1.0, True),
        ("L1", 1.0, True),
        ("L2", 0.0, False),
        ("W1", 1.0, True),
        ("W2", 0.0, False),
    ]
    assert rows(
        con, "SELECT test_id, fails_before, passes_after, flaky, results FROM test_outcomes ORDER BY 1"
    ) == [("G1", True, True, False, 3), ("G2", False, None, True, 1)]


def test_sft_examples(con) -> None:
    got = rows(
        con,
        "SELECT example_id, task_id, role, source, synthetic, upsample_index, split, policy_version "
        "FROM sft_examples ORDER BY example_id",
    )
    assert got == [
        ("B2#0", T1, "bugfixer", "selfplay", True, 0, "train", "v0"),
        ("B2#1", T1, "bugfixer", "selfplay", True, 1, "train", "v0"),
        ("B2#2", T1, "bugfixer", "selfplay", True, 2, "train", "v0"),
        ("B4#0", T1, "bugfixer", "selfplay", False, 0, "train", "v1"),
        ("GL#0", T2, "localizer", "gold", False, 0, "eval", "v0"),
        ("L1#0", T1, "localizer", "selfplay", False, 0, "train", "v0"),
        ("W1#0", T1, "testwriter", "selfplay", False, 0, "train", "v0"),
    ]
    messages, prompt, completion = con.execute(
        "SELECT messages, prompt, completion FROM sft_examples WHERE example_id = 'L1#0'"
    ).fetchone()
    assert messages == [
        {"role": "system", "content": "sys L1"},
        {"role": "user", "content": "ask L1"},
        {"role": "assistant", "content": "<think>why L1</think>\na.py\nx.py\nb.py"},
    ]
    assert (prompt, completion) == ("sys L1\n\nask L1", "<think>why L1</think>\na.py\nx.py\nb.py")
    # reasoning the model already wrote inside <think> is not wrapped twice
    assert con.execute("SELECT completion FROM sft_examples WHERE example_id = 'B2#0'").fetchone()[0] == (
        "<think>r2</think>\nfix"
    )


def test_rl_prompts(con) -> None:
    got = rows(
        con,
        "SELECT task_id, baseline_success_rate, baseline_samples, difficulty_bucket, localized_files, "
        "localized_from, split, fail_to_pass, prompt_text FROM rl_prompts ORDER BY 1",
    )
    assert got == [
        (T1, 0.5, 2, "medium", ["a.py", "x.py", "b.py"], "model", "train", [T1_F2P], "sys B3\n\nask B3"),
        (T2, 0.0, 1, "hard", ["c.py"], "gold", "eval", ["t/test_c.py::test_c"], "sys B5\n\nask B5"),
    ]
    assert con.execute(f"SELECT prompt FROM rl_prompts WHERE task_id = '{T1}'").fetchone()[0] == [
        {"role": "system", "content": "sys B3"},
        {"role": "user", "content": "ask B3"},
    ]


def test_replay_buffer(con) -> None:
    assert rows(
        con, "SELECT task_id, rollout_id, policy_version, reward, rank, staleness FROM replay_buffer"
    ) == [(T1, "B4", "v1", 1.0, 1, 0), (T1, "B2", "v0", 1.0, 2, 1)]


def test_false_positives(con) -> None:
    assert rows(
        con,
        "SELECT patch_id, task_id, rollout_id, policy_version, passed_generated_tests, failed_task_tests, "
        "counterexample_test, counterexample_test_patch FROM false_positives",
    ) == [("P1", T1, "B1", "v0", ["G1"], [T1_F2P], T1_F2P, T1_TEST_PATCH)]


def test_telemetry(con) -> None:
    assert rows(
        con,
        "SELECT stage, policy_version, file_kind, k, localizations, recall_at_k, all_found_at_k "
        "FROM telemetry_localization",
    ) == [
        ("selfplay", "v0", "source", 1, 2, 0.25, 0.0),
        ("selfplay", "v0", "source", 2, 2, 0.25, 0.0),
        ("selfplay", "v0", "source", 3, 2, 0.5, 0.5),
        ("selfplay", "v0", "source", 4, 2, 0.5, 0.5),
        ("selfplay", "v0", "source", 5, 2, 0.5, 0.5),
    ]
    assert rows(
        con,
        "SELECT stage, policy_version, proposals, applied, round(apply_rate, 4), judged, resolved, "
        "resolve_rate FROM telemetry_patches",
    ) == [("selfplay", "v0", 2, 2, 1.0, 2, 1, 0.5), ("selfplay", "v1", 3, 2, 0.6667, 2, 1, 0.5)]
    # every BugFixer sample of the stream parsed: acceptance per sample equals apply_rate here
    assert rows(
        con,
        "SELECT policy_version, samples, accepted, parse_failures, apply_failures, empty, not_tried, "
        "round(acceptance, 4) FROM telemetry_patches",
    ) == [("v0", 2, 2, 0, 0, 0, 0, 1.0), ("v1", 3, 2, 0, 1, 0, 0, 0.6667)]
    assert rows(
        con,
        "SELECT stage, policy_version, tests, run_before_fix, fail_before_rate, judged, "
        "fail_before_pass_after_rate, with_results, flake_rate, tasks_sampled, "
        "tasks_with_fail_before_pass_after, fail_before_fix_task_rate FROM telemetry_tests",
    ) == [("selfplay", "v0", 2, 2, 0.5, 1, 1.0, 2, 0.5, 1, 1, 1.0)]
    assert rows(
        con,
        "SELECT stage, policy_version, role, rollouts, reward_mean, reward_std, groups, solved_all, "
        "solved_none, solved_some FROM telemetry_rewards",
    ) == [
        ("selfplay", "v0", "bugfixer", 2, 0.5, 0.5, 1, 0.0, 0.0, 1.0),
        ("selfplay", "v0", "testwriter", 2, 0.5, 0.5, 1, 0.0, 0.0, 1.0),
        ("selfplay", "v1", "bugfixer", 2, 0.5, 0.5, 2, 0.5, 0.5, 0.0),
    ]
    assert rows(
        con, "SELECT gate, threshold, round(value, 4), passed, policy_version, stage FROM curriculum_gates"
    ) == [
        # per sampled task (T1: G1 fails before and passes after the fix), not per test (1 of 2)
        ("fail_before_fix_rate", 0.8, 1.0, True, "v0", "selfplay"),
        ("localization_accuracy", 0.6, 0.5, False, "v0", "selfplay"),
        ("patch_acceptance", 0.5, 1.0, True, "v0", "selfplay"),
        ("patch_acceptance", 0.5, 0.6667, True, "v1", "selfplay"),
    ]


def test_exports_in_trl_and_verl_layouts(con, module_workspace: Path) -> None:
    exports = module_workspace / ".forge" / "exports"
    messages = pq.read_table(exports / "trl" / "sft_messages.parquet")
    assert messages.column_names == ["example_id", "task_id", "role", "messages"]
    assert messages.column("example_id").to_pylist() == ["B2#0", "B2#1", "B2#2", "B4#0", "L1#0", "W1#0"]
    pc = pq.read_table(exports / "trl" / "sft_prompt_completion.parquet")
    assert {"prompt", "completion"} <= set(pc.column_names) and pc.num_rows == 6
    train = pq.read_table(exports / "verl" / "rl_train.parquet").to_pylist()
    assert [r["extra_info"]["task_id"] for r in train] == [T1]
    row = train[0]
    assert row["ability"] == "swe_bugfix" and row["data_source"] == "swe-bench"
    assert row["reward_model"]["style"] == "rule"
    assert (
        G1_NAME not in row["reward_model"]["ground_truth"] and T1_F2P in row["reward_model"]["ground_truth"]
    )
    assert row["prompt"][-1] == {"role": "user", "content": "ask B3"}
    evaluation = pq.read_table(exports / "verl" / "rl_eval.parquet").to_pylist()
    assert [r["extra_info"]["task_id"] for r in evaluation] == [T2]


def test_tables_meet_the_trainers_column_contracts(con) -> None:
    """Every column the trainers' readers expect exists here with the same DuckDB type."""
    import duckdb

    from vtforge.fixtures.warehouse import DDL

    expected = duckdb.connect()
    for ddl in DDL.values():
        expected.execute(ddl)
    for table in DDL:
        want = dict(expected.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
        have = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
        assert {c: have.get(c) for c in want} == want, table
