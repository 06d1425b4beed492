-- Generated-test quality per stage and policy version: fail_before_rate = tests that fail on the
-- unpatched repository / tests run there; fail_before_pass_after_rate = tests that also pass once
-- fixed / tests observed both ways; flake_rate = tests with a flaky result / tests with results.
SELECT
    o.stage::VARCHAR AS stage,
    o.policy_version,
    v.version_index,
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
LEFT JOIN policy_versions v USING (policy_version)
GROUP BY ALL
ORDER BY stage, version_index, policy_version
