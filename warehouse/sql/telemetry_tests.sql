-- Generated-test quality per stage and policy version.
-- Per test (test_outcomes): fail_before_rate = tests that fail on the unpatched repository / tests
-- run there; fail_before_pass_after_rate = tests that also pass once fixed / tests observed both
-- ways; flake_rate = tests with a flaky result / tests with results (a flaky test never counts as
-- failing before the fix).
-- Per task (the recipe's unit): tasks_sampled = tasks with at least one TestWriter sample (a
-- rollout with role 'testwriter', parsed or not); tasks_with_fail_before_pass_after = those with
-- at least one test from such a sample that fails before the fix and passes after it;
-- fail_before_fix_task_rate = tasks_with_fail_before_pass_after / tasks_sampled.
-- Summed from telemetry_tests_by_task (counts per task, rebuilt for the tasks new events touch),
-- so a refresh never re-reads every test outcome and rollout.
WITH summed AS (
    SELECT
        stage,
        policy_version,
        sum(tests)::BIGINT AS tests,
        sum(run_before_fix)::BIGINT AS run_before_fix,
        sum(failed_before)::BIGINT AS failed_before,
        sum(judged)::BIGINT AS judged,
        sum(failed_before_passed_after)::BIGINT AS failed_before_passed_after,
        sum(with_results)::BIGINT AS with_results,
        sum(flaky)::BIGINT AS flaky,
        count(*) FILTER (WHERE sampled) AS tasks_sampled,
        count(*) FILTER (WHERE sampled_good) AS tasks_with_fail_before_pass_after
    FROM telemetry_tests_by_task
    GROUP BY ALL
)
SELECT
    s.stage,
    s.policy_version,
    v.version_index,
    s.tests,
    s.run_before_fix,
    s.failed_before / nullif(s.run_before_fix, 0) AS fail_before_rate,
    s.judged,
    s.failed_before_passed_after / nullif(s.judged, 0) AS fail_before_pass_after_rate,
    s.with_results,
    s.flaky / nullif(s.with_results, 0) AS flake_rate,
    s.tasks_sampled,
    s.tasks_with_fail_before_pass_after,
    s.tasks_with_fail_before_pass_after / nullif(s.tasks_sampled, 0) AS fail_before_fix_task_rate
FROM summed s
LEFT JOIN policy_versions v ON v.policy_version = s.policy_version
ORDER BY stage, version_index, policy_version
