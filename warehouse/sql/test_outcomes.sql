-- Per generated test: does it fail on the unpatched repository (a base run: no patch, and not
-- self-play's gold run), and pass once the task is fixed (the gold run, or a run of a patch that
-- resolves the task or is the gold patch)? A test reward of outcome fails_before_passes_after
-- settles both. NULL = never observed.
-- flaky: a result of the test is marked flaky (its status changed when it was re-run; a test that
-- fails on every re-run has reruns > 0 but is not flaky). A flaky test is never a fail-before-fix
-- test: fails_before is false whatever a run or a reward said, and passes_after reads only its
-- results that were not flaky.
WITH results AS (
    SELECT e.execution_id, e.patch_id, e.test_id AS run_test_id, e.task_id, e.run_kind, unnest(e.tests) AS r
    FROM executions e
    WHERE NOT e.infra_failure
),
named AS (
    SELECT test_id, task_id, unnest(test_names) AS name FROM tests
),
fixes AS (
    SELECT DISTINCT subject_id AS patch_id FROM rewards WHERE subject_kind = 'patch' AND outcome = 'resolved'
    UNION
    SELECT p.patch_id FROM patches p JOIN tasks t ON t.task_id = p.task_id WHERE p.diff = t.patch
),
matched AS (
    SELECT
        coalesce(n.test_id, res.run_test_id) AS test_id,
        res.r.status AS status,
        coalesce(res.r.flaky, false) AS flaky,
        res.patch_id IS NULL AND res.run_kind IS DISTINCT FROM 'gold' AS on_base,
        res.run_kind IS NOT DISTINCT FROM 'gold'
            OR coalesce(res.patch_id IN (SELECT patch_id FROM fixes), false) AS on_fix
    FROM results res
    LEFT JOIN named n ON n.task_id = res.task_id AND n.name = res.r.name
    WHERE n.test_id IS NOT NULL OR res.run_test_id IS NOT NULL
),
observed AS (
    SELECT
        test_id,
        bool_or(is_failure(status)) FILTER (WHERE on_base) AS fails_before,
        bool_and(status = 'PASSED') FILTER (WHERE on_fix AND NOT flaky) AS passes_after,
        bool_or(flaky) AS flaky,
        count(*) AS results
    FROM matched
    GROUP BY test_id
),
rewarded AS (
    SELECT subject_id AS test_id, max(reward) AS reward,
           bool_or(outcome = 'fails_before_passes_after') AS judged_good
    FROM rewards
    WHERE subject_kind = 'test' AND outcome NOT IN ('infra_failure', 'flaky')
    GROUP BY subject_id
)
SELECT
    t.test_id,
    t.task_id,
    t.rollout_id,
    t.policy_version,
    CASE WHEN o.flaky THEN false WHEN w.judged_good THEN true ELSE o.fails_before END AS fails_before,
    CASE WHEN w.judged_good AND NOT coalesce(o.flaky, false) THEN true ELSE o.passes_after END
        AS passes_after,
    coalesce(o.flaky, false) AS flaky,
    coalesce(o.results, 0) AS results,
    w.reward,
    t.stage,
    t.synthetic
FROM tests t
LEFT JOIN observed o USING (test_id)
LEFT JOIN rewarded w USING (test_id)
