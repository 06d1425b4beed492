"""Aggregates summed from per-task partials equal the single pass over every row they replace.

``telemetry_rewards`` merges per-group counts, sums and variances (Chan et al.'s parallel formula);
``telemetry_localization`` and ``telemetry_tests`` sum per-task counts. Each is checked against
the same metric computed in one pass over random rows of its inputs, with several tasks per group,
NULL policy versions and groups of one rollout."""

from __future__ import annotations

import math
import random

import duckdb
import pytest

from vtforge.warehouse.models import MODELS_BY_NAME


def _build(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    for name in names:
        con.execute(f'CREATE TABLE "{name}" AS {MODELS_BY_NAME[name].sql}')


def _close(left: list[tuple], right: list[tuple]) -> bool:
    if len(left) != len(right):
        return False
    for a, b in zip(left, right, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif x != y:
                return False
    return True


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET VARIABLE max_localized_files = 5")
    con.execute(
        "CREATE TABLE policy_versions AS "
        "SELECT * FROM (VALUES ('v0', 0), ('v1', 1)) t(policy_version, version_index)"
    )
    return con


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reward_mean_and_std_merged_from_groups_equal_one_pass(
    con: duckdb.DuckDBPyConnection, seed: int
) -> None:
    rng = random.Random(seed)
    rows = []
    for n in range(400):
        reward = rng.choice([0.0, 1.0, 0.5, round(rng.random(), 3)])
        role = rng.choice(["bugfixer", "testwriter", "localizer"])
        version = rng.choice(["v0", "v1", None])
        rows.append((f"r{n}", f"t{rng.randrange(30)}", role, version, "selfplay", reward, reward >= 1.0))
    con.execute(
        "CREATE TABLE rollout_outcomes (rollout_id VARCHAR, task_id VARCHAR, role VARCHAR, "
        "policy_version VARCHAR, stage VARCHAR, reward DOUBLE, success BOOLEAN)"
    )
    con.executemany("INSERT INTO rollout_outcomes VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    _build(con, "telemetry_rewards_by_task", "telemetry_rewards")
    merged = con.execute(
        "SELECT stage, policy_version, role, rollouts, reward_mean, reward_std, groups, solved_all, "
        "solved_none FROM telemetry_rewards ORDER BY ALL"
    ).fetchall()
    one_pass = con.execute(
        """
        WITH judged AS (SELECT * FROM rollout_outcomes WHERE role IN ('bugfixer', 'testwriter')),
        per_group AS (
            SELECT stage, policy_version, role, task_id, bool_and(success) AS all_solved,
                   NOT bool_or(success) AS none_solved
            FROM judged GROUP BY ALL)
        SELECT j.stage, j.policy_version, j.role, count(*), avg(reward), stddev_pop(reward),
               any_value(g.groups), any_value(g.solved_all), any_value(g.solved_none)
        FROM judged j
        JOIN (SELECT stage, policy_version, role, count(*) AS groups,
                     avg(all_solved::INTEGER) AS solved_all, avg(none_solved::INTEGER) AS solved_none
              FROM per_group GROUP BY ALL) g
          ON g.stage = j.stage AND g.policy_version IS NOT DISTINCT FROM j.policy_version AND g.role = j.role
        GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    assert any(row[1] is None for row in merged)  # rollouts of no known policy are reported too
    assert _close(merged, one_pass), (merged, one_pass)


def test_a_group_of_equal_rewards_has_no_spread(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE rollout_outcomes AS SELECT 'r' || i AS rollout_id, 't' || (i % 7) AS task_id, "
        "'bugfixer' AS role, 'v0' AS policy_version, 'selfplay' AS stage, 0.3::DOUBLE AS reward, "
        "false AS success FROM range(50) t(i)"
    )
    _build(con, "telemetry_rewards_by_task", "telemetry_rewards")
    std = con.execute("SELECT reward_std FROM telemetry_rewards").fetchone()[0]
    assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_recall_at_k_summed_per_task_equals_one_pass(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    rng = random.Random(seed)
    files = [f"src/f{i}.py" for i in range(8)]
    rows = [
        (
            f"t{rng.randrange(20)}",
            rng.sample(files, rng.randrange(0, 7)),
            rng.sample(files, rng.randrange(0, 3)),
            rng.choice(["model", "gold", "frozen"]),
            rng.choice(["source", "test"]),
            rng.choice(["v0", "v1"]),
        )
        for _ in range(300)
    ]
    con.execute(
        "CREATE TABLE localizations (task_id VARCHAR, files VARCHAR[], gold_files VARCHAR[], method VARCHAR, "
        "file_kind VARCHAR, policy_version VARCHAR, stage VARCHAR DEFAULT 'selfplay')"
    )
    con.executemany(
        "INSERT INTO localizations (task_id, files, gold_files, method, file_kind, policy_version) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    _build(con, "telemetry_localization_by_task", "telemetry_localization")
    summed = con.execute(
        "SELECT policy_version, file_kind, k, localizations, recall_at_k, all_found_at_k "
        "FROM telemetry_localization ORDER BY ALL"
    ).fetchall()
    one_pass = con.execute(
        """
        SELECT l.policy_version, l.file_kind, k.k, count(*),
               avg(len(list_intersect(list_distinct(l.files[1:k.k]), l.gold_files)) / len(l.gold_files)),
               avg(list_has_all(l.files[1:k.k], l.gold_files)::INTEGER)
        FROM localizations l CROSS JOIN range(1, 6) k(k)
        WHERE len(l.gold_files) > 0 AND l.method NOT IN ('gold', 'frozen')
        GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    assert summed and _close(summed, one_pass), (summed, one_pass)


def test_test_quality_summed_per_task_equals_one_pass(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(7)
    booleans = [True, False, None]
    outcomes = [
        (
            f"g{n}",
            f"w{rng.randrange(40)}",
            rng.choice(booleans),
            rng.choice(booleans),
            rng.randrange(3),
            rng.choice([True, False]),
        )
        for n in range(200)
    ]
    con.execute(
        "CREATE TABLE rollouts AS SELECT 'w' || i AS rollout_id, 't' || (i % 15) AS task_id, "
        "CASE WHEN i % 5 = 0 THEN 'bugfixer' ELSE 'testwriter' END AS role, "
        "CASE WHEN i % 3 = 0 THEN 'v1' ELSE 'v0' END AS policy_version, 'selfplay' AS stage "
        "FROM range(45) t(i)"
    )
    con.execute(
        "CREATE TABLE outcomes_in (test_id VARCHAR, rollout_id VARCHAR, fails_before BOOLEAN, "
        "passes_after BOOLEAN, results INTEGER, flaky BOOLEAN)"
    )
    con.executemany("INSERT INTO outcomes_in VALUES (?, ?, ?, ?, ?, ?)", outcomes)
    con.execute(  # a test outcome belongs to its rollout's task, stage and version
        "CREATE TABLE test_outcomes AS SELECT o.*, r.task_id, r.stage, r.policy_version "
        "FROM outcomes_in o JOIN rollouts r USING (rollout_id)"
    )
    _build(con, "telemetry_tests_by_task", "telemetry_tests")
    summed = con.execute(
        "SELECT policy_version, tests, run_before_fix, fail_before_rate, judged, "
        "fail_before_pass_after_rate, with_results, flake_rate, tasks_sampled, "
        "tasks_with_fail_before_pass_after FROM telemetry_tests ORDER BY 1"
    ).fetchall()
    one_pass = con.execute(
        """
        WITH per_test AS (
            SELECT policy_version, count(*) AS tests, count(fails_before) AS run_before_fix,
                   count(*) FILTER (WHERE fails_before) / nullif(count(fails_before), 0) AS fail_before_rate,
                   count(*) FILTER (WHERE fails_before IS NOT NULL AND passes_after IS NOT NULL) AS judged,
                   count(*) FILTER (WHERE fails_before AND passes_after) / nullif(
                       count(*) FILTER (WHERE fails_before IS NOT NULL AND passes_after IS NOT NULL), 0
                   ) AS fbpa_rate,
                   count(*) FILTER (WHERE results > 0) AS with_results,
                   count(*) FILTER (WHERE flaky)
                     / nullif(count(*) FILTER (WHERE results > 0), 0) AS flake_rate
            FROM test_outcomes GROUP BY ALL),
        per_task AS (
            SELECT policy_version, count(*) AS sampled, count(*) FILTER (WHERE good) AS good
            FROM (SELECT r.policy_version, r.task_id,
                         bool_or(coalesce(o.fails_before AND o.passes_after, false)) AS good
                  FROM rollouts r LEFT JOIN test_outcomes o USING (rollout_id)
                  WHERE r.role = 'testwriter' GROUP BY ALL)
            GROUP BY ALL)
        SELECT t.policy_version, t.tests, t.run_before_fix, t.fail_before_rate, t.judged, t.fbpa_rate,
               t.with_results, t.flake_rate, k.sampled, k.good
        FROM per_test t JOIN per_task k USING (policy_version) ORDER BY 1
        """
    ).fetchall()
    assert summed and _close(summed, one_pass), (summed, one_pass)
