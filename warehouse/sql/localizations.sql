-- One row per localization rollout, with the gold files it is measured against.
SELECT
    l.rollout_id,
    coalesce(l.task_id, r.task_id) AS task_id,
    l.files,
    l.dropped,
    l.method,
    r.policy_version,
    r.sample_index,
    t.gold_files,
    l.stage,
    l.synthetic,
    l.occurred_at
FROM raw_localization_predicted l
LEFT JOIN rollouts r ON r.rollout_id = l.rollout_id
LEFT JOIN tasks t ON t.task_id = coalesce(l.task_id, r.task_id)
QUALIFY row_number() OVER (PARTITION BY l.rollout_id ORDER BY l.occurred_at DESC, l.event_id) = 1
