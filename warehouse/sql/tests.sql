-- One row per generated test (test_id hashes the test diff).
SELECT
    t.test_id,
    t.rollout_id,
    coalesce(t.task_id, r.task_id) AS task_id,
    t.test_file,
    t.test_names,
    t.diff,
    t.is_counterexample,
    r.policy_version,
    t.stage,
    t.synthetic,
    t.occurred_at
FROM raw_test_proposed t
LEFT JOIN rollouts r ON r.rollout_id = t.rollout_id
QUALIFY row_number() OVER (PARTITION BY t.test_id ORDER BY t.occurred_at, t.event_id) = 1
