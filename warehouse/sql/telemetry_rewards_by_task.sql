-- telemetry_rewards' partial aggregate per group (a task's judged rollouts of one role at one
-- policy version, GRPO's group): its count, reward sum and population variance, and whether all
-- or none of its samples solved the task. A new event's task rebuilds its groups alone (a slice),
-- so that telemetry_rewards merges a few rows per task instead of re-reading every rollout.
SELECT
    task_id,
    stage::VARCHAR AS stage,
    policy_version,
    role::VARCHAR AS role,
    count(*) AS rollouts,
    sum(reward) AS reward_sum,
    var_pop(reward) AS reward_var,
    bool_and(success) AS all_solved,
    NOT bool_or(success) AS none_solved
FROM rollout_outcomes
WHERE reward IS NOT NULL AND role IN ('bugfixer', 'testwriter', 'synthesis', 'agent')
GROUP BY ALL
