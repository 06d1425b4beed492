-- Patches that passed every *valid* generated test but failed the task's own tests
-- (FAIL_TO_PASS / PASS_TO_PASS): the counterexample is the first own test they fail. A generated
-- test is valid for a task when it failed on the unpatched repository (a base run: patch_id NULL,
-- not the gold run) and at least one candidate passes it; a test every candidate fails tells
-- nothing about any of them.
WITH base_failures AS (
    SELECT DISTINCT task_id, r.name AS name
    FROM (
        SELECT task_id, unnest(tests) AS r FROM executions
        WHERE patch_id IS NULL AND coalesce(run_kind, 'base') = 'base' AND NOT infra_failure
    )
    WHERE is_failure(r.status)
),
results AS (
    SELECT e.patch_id, e.task_id, e.test_id AS run_test_id, unnest(e.tests) AS r
    FROM executions e
    WHERE e.patch_id IS NOT NULL AND NOT e.infra_failure
),
generated AS (
    SELECT test_id, task_id, unnest(test_names) AS name FROM tests
),
own AS (
    SELECT task_id, unnest(list_concat(fail_to_pass, pass_to_pass)) AS name, fail_to_pass FROM tasks
),
classified AS (
    SELECT
        res.patch_id, res.task_id, res.r.name AS name, res.r.status AS status,
        coalesce(g.test_id, res.run_test_id) AS generated_test_id,
        o.name IS NOT NULL AND g.test_id IS NULL AND res.run_test_id IS NULL AS is_own,
        coalesce(list_contains(o.fail_to_pass, res.r.name), false) AS is_fail_to_pass,
        bf.name IS NOT NULL AS failed_on_base
    FROM results res
    LEFT JOIN generated g ON g.task_id = res.task_id AND g.name = res.r.name
    LEFT JOIN own o ON o.task_id = res.task_id AND o.name = res.r.name
    LEFT JOIN base_failures bf ON bf.task_id = res.task_id AND bf.name = res.r.name
),
passable AS (
    SELECT DISTINCT task_id, name FROM classified
    WHERE generated_test_id IS NOT NULL AND status = 'PASSED'
),
judged AS (
    SELECT c.*, c.generated_test_id IS NOT NULL AND c.failed_on_base AND pa.name IS NOT NULL AS valid
    FROM classified c
    LEFT JOIN passable pa ON pa.task_id = c.task_id AND pa.name = c.name
),
per_patch AS (
    SELECT
        patch_id,
        any_value(task_id) AS task_id,
        count(*) FILTER (WHERE valid) AS generated_results,
        bool_and(status = 'PASSED') FILTER (WHERE valid) AS generated_all_passed,
        list_sort(list_distinct(list(generated_test_id) FILTER (WHERE valid))) AS passed_generated_tests,
        list_sort(list_distinct(list(name) FILTER (WHERE is_own AND is_failure(status)))) AS failed_task_tests,
        list_sort(list_distinct(list(name) FILTER (WHERE is_own AND is_fail_to_pass AND is_failure(status))))
            AS failed_fail_to_pass
    FROM judged
    GROUP BY patch_id
)
SELECT
    pp.patch_id,
    pp.task_id,
    p.rollout_id,
    p.policy_version,
    pp.passed_generated_tests,
    pp.failed_task_tests,
    coalesce(pp.failed_fail_to_pass[1], pp.failed_task_tests[1]) AS counterexample_test,
    t.test_patch AS counterexample_test_patch,
    p.diff,
    p.stage,
    p.synthetic
FROM per_patch pp
JOIN patches p USING (patch_id)
LEFT JOIN tasks t ON t.task_id = pp.task_id
WHERE pp.generated_results > 0 AND pp.generated_all_passed AND len(pp.failed_task_tests) > 0
