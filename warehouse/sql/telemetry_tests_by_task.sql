-- telemetry_tests' counts per task, stage and policy version: the partial aggregate that a new
-- event's task rebuilds alone (a slice), so that telemetry_tests sums a few rows per task instead
-- of re-reading every test outcome and rollout. The definitions are telemetry_tests' (see there):
-- the per-test counts, and whether the task had a TestWriter sample (sampled) with a test that
-- fails before the fix and passes after it (sampled_good).
WITH per_test AS (
    SELECT
        o.task_id,
        o.stage::VARCHAR AS stage,
        o.policy_version,
        count(*) AS tests,
        count(o.fails_before) AS run_before_fix,
        count(*) FILTER (WHERE o.fails_before) AS failed_before,
        count(*) FILTER (WHERE o.fails_before IS NOT NULL AND o.passes_after IS NOT NULL) AS judged,
        count(*) FILTER (WHERE o.fails_before AND o.passes_after) AS failed_before_passed_after,
        count(*) FILTER (WHERE o.results > 0) AS with_results,
        count(*) FILTER (WHERE o.flaky) AS flaky
    FROM test_outcomes o
    GROUP BY ALL
),
sampled AS (
    SELECT r.task_id, r.stage::VARCHAR AS stage, r.policy_version,
           bool_or(coalesce(o.fails_before AND o.passes_after, false)) AS good
    FROM rollouts r
    LEFT JOIN test_outcomes o ON o.rollout_id = r.rollout_id
    WHERE r.role = 'testwriter' AND r.task_id IS NOT NULL
    GROUP BY ALL
)
SELECT
    coalesce(t.task_id, s.task_id) AS task_id,
    coalesce(t.stage, s.stage) AS stage,
    coalesce(t.policy_version, s.policy_version) AS policy_version,
    coalesce(t.tests, 0) AS tests,
    coalesce(t.run_before_fix, 0) AS run_before_fix,
    coalesce(t.failed_before, 0) AS failed_before,
    coalesce(t.judged, 0) AS judged,
    coalesce(t.failed_before_passed_after, 0) AS failed_before_passed_after,
    coalesce(t.with_results, 0) AS with_results,
    coalesce(t.flaky, 0) AS flaky,
    s.task_id IS NOT NULL AS sampled,
    coalesce(s.good, false) AS sampled_good
FROM per_test t
FULL OUTER JOIN sampled s
    ON s.task_id IS NOT DISTINCT FROM t.task_id AND s.stage IS NOT DISTINCT FROM t.stage
    AND s.policy_version IS NOT DISTINCT FROM t.policy_version
