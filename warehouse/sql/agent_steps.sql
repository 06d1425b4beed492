-- One row per step of a live vtcode session, joined to its rollout.
SELECT
    a.step_id,
    a.rollout_id,
    coalesce(a.task_id, r.task_id) AS task_id,
    r.policy_version,
    a.turn,
    a.step_index,
    a.kind,
    a.tool_name,
    a.arguments,
    a.output,
    a.status,
    a.exit_code,
    a.files_changed,
    a.lines_added,
    a.lines_removed,
    a.duration_ms,
    a.envelope.session_id AS session_id,
    a.stage,
    a.synthetic,
    a.occurred_at
FROM raw_agent_step a
LEFT JOIN rollouts r ON r.rollout_id = a.rollout_id
QUALIFY row_number() OVER (PARTITION BY a.step_id ORDER BY a.occurred_at DESC, a.event_id) = 1
