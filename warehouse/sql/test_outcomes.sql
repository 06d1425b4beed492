-- Per generated test: does it fail on the unpatched repository (an execution with no patch), and
-- pass once the task is fixed (an execution of a patch that resolves the task, or of the gold
-- patch)? A test reward of outcome fails_before_passes_after settles both. NULL = never observed.
WITH results AS (
    SELECT e.execution_id, e.patch_id, e.test_id AS run_test_id, e.task_id, unnest(e.tests) AS r
    FROM executions e
    WHERE NOT e.infra_failure
),
named AS (
    SELECT test_id, task_id, unnest(test_names) AS name FROM tests
),
fixes AS (
    SELECT DISTINCT subject_id AS patch_id FROM rewards WHERE subject_kind = 'patch' AND outcome = 'resolved'
    UNION
    SELECT p.patch_id FROM patches p JOIN tasks t ON t.task_id = p.task_id WHERE p.diff = t.gold_patch
),
matched AS (
    SELECT
        coalesce(n.test_id, res.run_test_id) AS test_id,
        res.patch_id,
        res.r.status AS status,
        res.r.flaky OR res.r.reruns > 0 AS flaky,
        res.patch_id IS NOT NULL AND res.patch_id IN (SELECT patch_id FROM fixes) AS on_fix
    FROM results res
    LEFT JOIN named n ON n.task_id = res.task_id AND n.name = res.r.name
    WHERE n.test_id IS NOT NULL OR res.run_test_id IS NOT NULL
),
observed AS (
    SELECT
        test_id,
        bool_or(is_failure(status)) FILTER (WHERE patch_id IS NULL) AS fails_before,
        bool_and(status = 'PASSED') FILTER (WHERE on_fix) AS passes_after,
        bool_or(flaky) AS flaky,
        count(*) AS results
    FROM matched
    GROUP BY test_id
),
rewarded AS (
    SELECT subject_id AS test_id, max(reward) AS reward,
           bool_or(outcome = 'fails_before_passes_after') AS judged_good
    FROM rewards
    WHERE subject_kind = 'test' AND outcome <> 'infra_failure'
    GROUP BY subject_id
)
SELECT
    t.test_id,
    t.task_id,
    t.rollout_id,
    t.policy_version,
    CASE WHEN w.judged_good THEN true ELSE o.fails_before END AS fails_before,
    CASE WHEN w.judged_good THEN true ELSE o.passes_after END AS passes_after,
    coalesce(o.flaky, false) AS flaky,
    coalesce(o.results, 0) AS results,
    w.reward,
    t.stage,
    t.synthetic
FROM tests t
LEFT JOIN observed o USING (test_id)
LEFT JOIN rewarded w USING (test_id)
