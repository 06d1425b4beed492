-- Generated-test quality per stage and policy version.
-- Per test (test_outcomes): fail_before_rate = tests that fail on the unpatched repository / tests
-- run there; fail_before_pass_after_rate = tests that also pass once fixed / tests observed both
-- ways; flake_rate = tests with a flaky result / tests with results (a flaky test never counts as
-- failing before the fix).
-- Per task (the recipe's unit): tasks_sampled = tasks with at least one TestWriter sample (a
-- rollout with role 'testwriter', parsed or not); tasks_with_fail_before_pass_after = those with
-- at least one test from such a sample that fails before the fix and passes after it;
-- fail_before_fix_task_rate = tasks_with_fail_before_pass_after / tasks_sampled.
WITH per_test AS (
    SELECT
        o.stage::VARCHAR AS stage,
        o.policy_version,
        count(*) AS tests,
        count(o.fails_before) AS run_before_fix,
        count(*) FILTER (WHERE o.fails_before) / nullif(count(o.fails_before), 0) AS fail_before_rate,
        count(*) FILTER (WHERE o.fails_before IS NOT NULL AND o.passes_after IS NOT NULL) AS judged,
        count(*) FILTER (WHERE o.fails_before AND o.passes_after)
            / nullif(count(*) FILTER (WHERE o.fails_before IS NOT NULL AND o.passes_after IS NOT NULL), 0)
            AS fail_before_pass_after_rate,
        count(*) FILTER (WHERE o.results > 0) AS with_results,
        count(*) FILTER (WHERE o.flaky) / nullif(count(*) FILTER (WHERE o.results > 0), 0) AS flake_rate
    FROM test_outcomes o
    GROUP BY ALL
),
sampled AS (
    SELECT r.stage::VARCHAR AS stage, r.policy_version, r.task_id,
           bool_or(coalesce(o.fails_before AND o.passes_after, false)) AS good
    FROM rollouts r
    LEFT JOIN test_outcomes o ON o.rollout_id = r.rollout_id
    WHERE r.role = 'testwriter' AND r.task_id IS NOT NULL
    GROUP BY ALL
),
per_task AS (
    SELECT stage, policy_version,
           count(*) AS tasks_sampled,
           count(*) FILTER (WHERE good) AS tasks_with_fail_before_pass_after
    FROM sampled
    GROUP BY ALL
)
SELECT
    coalesce(t.stage, k.stage) AS stage,
    coalesce(t.policy_version, k.policy_version) AS policy_version,
    v.version_index,
    coalesce(t.tests, 0) AS tests,
    coalesce(t.run_before_fix, 0) AS run_before_fix,
    t.fail_before_rate,
    coalesce(t.judged, 0) AS judged,
    t.fail_before_pass_after_rate,
    coalesce(t.with_results, 0) AS with_results,
    t.flake_rate,
    coalesce(k.tasks_sampled, 0) AS tasks_sampled,
    coalesce(k.tasks_with_fail_before_pass_after, 0) AS tasks_with_fail_before_pass_after,
    k.tasks_with_fail_before_pass_after / nullif(k.tasks_sampled, 0) AS fail_before_fix_task_rate
FROM per_test t
FULL OUTER JOIN per_task k
    ON k.stage IS NOT DISTINCT FROM t.stage AND k.policy_version IS NOT DISTINCT FROM t.policy_version
LEFT JOIN policy_versions v ON v.policy_version = coalesce(t.policy_version, k.policy_version)
ORDER BY stage, version_index, policy_version
