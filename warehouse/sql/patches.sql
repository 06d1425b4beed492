-- One row per patch (patch_id hashes the normalised diff, so several rollouts can propose it:
-- the first proposal is kept and the others are counted).
SELECT
    p.patch_id,
    p.rollout_id,
    coalesce(p.task_id, r.task_id) AS task_id,
    p.diff,
    p.search_replace,
    p.files,
    p.lines_added,
    p.lines_removed,
    p.apply_status,
    p.apply_status IN ('applied', 'applied_with_fuzz') AS applied,
    p.apply_error,
    r.role,
    r.policy_version,
    count(*) OVER (PARTITION BY p.patch_id) AS proposals,
    p.stage,
    p.synthetic,
    p.occurred_at
FROM raw_patch_proposed p
LEFT JOIN rollouts r ON r.rollout_id = p.rollout_id
QUALIFY row_number() OVER (PARTITION BY p.patch_id ORDER BY p.occurred_at, p.event_id) = 1
