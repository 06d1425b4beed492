-- Policy versions in the order they first appeared; version_index 0 is the oldest. A version first
-- appears in a rollout (policy_versions_by_task: the first sighting per task) or a training step.
WITH seen AS (
    SELECT policy_version, first_seen AS occurred_at FROM policy_versions_by_task
    UNION ALL
    SELECT policy_version, occurred_at FROM training_steps
)
SELECT
    policy_version,
    min(occurred_at) AS first_seen,
    (dense_rank() OVER (ORDER BY min(occurred_at), policy_version) - 1)::INTEGER AS version_index
FROM seen
WHERE policy_version IS NOT NULL
GROUP BY policy_version
