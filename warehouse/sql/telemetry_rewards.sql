-- Rewards per stage, policy version and role, one reward per rollout (GRPO's unit): mean and
-- population std, and over groups (a task's rollouts of one role at one version) the share that
-- all / none / some of the samples solved.
WITH judged AS (
    SELECT * FROM rollout_outcomes WHERE reward IS NOT NULL AND role IN ('bugfixer', 'testwriter', 'synthesis', 'agent')
),
groups AS (
    SELECT stage, policy_version, role, task_id,
           bool_and(success) AS all_solved, NOT bool_or(success) AS none_solved
    FROM judged
    GROUP BY ALL
),
group_stats AS (
    SELECT stage, policy_version, role, count(*) AS groups,
           avg(CASE WHEN all_solved THEN 1.0 ELSE 0.0 END) AS solved_all,
           avg(CASE WHEN none_solved THEN 1.0 ELSE 0.0 END) AS solved_none,
           avg(CASE WHEN NOT all_solved AND NOT none_solved THEN 1.0 ELSE 0.0 END) AS solved_some
    FROM groups
    GROUP BY ALL
),
reward_stats AS (
    SELECT stage, policy_version, role, count(*) AS rollouts,
           avg(reward) AS reward_mean, stddev_pop(reward) AS reward_std
    FROM judged
    GROUP BY ALL
)
SELECT
    r.stage::VARCHAR AS stage,
    r.policy_version,
    v.version_index,
    r.role::VARCHAR AS role,
    r.rollouts,
    r.reward_mean,
    r.reward_std,
    g.groups,
    g.solved_all,
    g.solved_none,
    g.solved_some
FROM reward_stats r
JOIN group_stats g USING (stage, policy_version, role)
LEFT JOIN policy_versions v USING (policy_version)
ORDER BY stage, version_index, policy_version, role
