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
-- the winning snapshot per test_id, ranked on narrow columns (sorting the wide rows costs more)
WHERE t.event_id IN (
    SELECT event_id FROM raw_test_proposed
    QUALIFY row_number() OVER (PARTITION BY test_id ORDER BY occurred_at, event_id) = 1)
