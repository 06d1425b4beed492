-- Policy versions in the order they first appeared; version_index 0 is the oldest.
WITH seen AS (
    SELECT policy_version, occurred_at FROM rollouts
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
