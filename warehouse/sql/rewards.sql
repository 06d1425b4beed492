-- One row per reward, with the task, role and policy version it belongs to.
SELECT
    w.reward_id,
    coalesce(w.task_id, r.task_id, p.task_id, t.task_id) AS task_id,
    w.subject_kind,
    w.subject_id,
    w.rollout_id,
    w.execution_id,
    coalesce(w.policy_version, r.policy_version) AS policy_version,
    r.role,
    w.reward,
    w.outcome,
    w.stage,
    w.synthetic,
    w.occurred_at
FROM raw_reward_assigned w
LEFT JOIN rollouts r ON r.rollout_id = w.rollout_id
LEFT JOIN patches p ON w.subject_kind = 'patch' AND p.patch_id = w.subject_id
LEFT JOIN tests t ON w.subject_kind = 'test' AND t.test_id = w.subject_id
QUALIFY row_number() OVER (PARTITION BY w.reward_id ORDER BY w.occurred_at DESC, w.event_id) = 1
