-- One row per graded prediction.
SELECT
    e.evaluation_id,
    e.instance_id AS task_id,
    t.repo,
    e.model,
    e.policy_version,
    e.patch_is_none,
    e.patch_exists,
    e.patch_successfully_applied,
    e.resolved,
    e.infra_failure,
    e.fail_to_pass_success,
    e.fail_to_pass_failure,
    e.pass_to_pass_success,
    e.pass_to_pass_failure,
    coalesce(e.split, t.split) AS split,
    e.stage,
    e.synthetic,
    e.occurred_at
FROM raw_evaluation_result e
LEFT JOIN tasks t ON t.task_id = e.instance_id
QUALIFY row_number() OVER (PARTITION BY e.evaluation_id ORDER BY e.occurred_at DESC, e.event_id) = 1
