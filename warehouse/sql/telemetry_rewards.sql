-- Rewards per stage, policy version and role, one reward per rollout (GRPO's unit): mean and
-- population std, and over groups (a task's rollouts of one role at one version) the share that
-- all / none / some of the samples solved.
-- Merged from telemetry_rewards_by_task (one row per group, rebuilt for the tasks new events
-- touch), so a refresh never re-reads every rollout. The std merges the groups' own variances
-- with the spread of their means around the overall mean (Chan et al.'s parallel formula), which
-- is exact where summing squares would cancel.
WITH parts AS (
    SELECT
        *,
        sum(reward_sum) OVER by_key / sum(rollouts) OVER by_key AS overall_mean
    FROM telemetry_rewards_by_task
    WINDOW by_key AS (PARTITION BY stage, policy_version, role)
),
merged AS (
    SELECT
        stage,
        policy_version,
        role,
        sum(rollouts)::BIGINT AS rollouts,
        sum(reward_sum) / sum(rollouts) AS reward_mean,
        sqrt(
            sum(rollouts * reward_var + rollouts * (reward_sum / rollouts - overall_mean) ** 2) / sum(rollouts)
        ) AS reward_std,
        count(*) AS groups,
        avg(CASE WHEN all_solved THEN 1.0 ELSE 0.0 END) AS solved_all,
        avg(CASE WHEN none_solved THEN 1.0 ELSE 0.0 END) AS solved_none,
        avg(CASE WHEN NOT all_solved AND NOT none_solved THEN 1.0 ELSE 0.0 END) AS solved_some
    FROM parts
    GROUP BY ALL
)
SELECT
    m.stage,
    m.policy_version,
    v.version_index,
    m.role,
    m.rollouts,
    m.reward_mean,
    m.reward_std,
    m.groups,
    m.solved_all,
    m.solved_none,
    m.solved_some
FROM merged m
LEFT JOIN policy_versions v ON v.policy_version = m.policy_version
ORDER BY stage, version_index, policy_version, role
