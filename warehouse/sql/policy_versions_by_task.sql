-- policy_versions' first sighting per task: when each policy version first sampled a rollout of
-- the task. The partial minimum that a new event's task rebuilds alone (a slice), so that
-- policy_versions takes the minimum of a few rows per task instead of re-reading every rollout.
SELECT task_id, policy_version, min(occurred_at) AS first_seen
FROM rollouts
WHERE policy_version IS NOT NULL
GROUP BY ALL
