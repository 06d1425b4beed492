-- SFT examples in chat format: successful rollouts (full reward) and gold rollouts (engine gold),
-- one example per rollout; synthetic rollouts repeated synthetic_upsample times (upsample_index).
WITH picked AS (
    SELECT
        r.rollout_id, r.task_id, r.role, r.policy_version, r.synthetic, r.stage,
        r.prompt_tokens, r.completion_tokens,
        CASE WHEN r.engine = 'gold' THEN 'gold' WHEN r.role = 'agent' THEN 'agent' ELSE 'selfplay' END AS source,
        list_append(c.prompt_messages, {'role': 'assistant', 'content': c.completion}) AS messages,
        c.prompt, c.completion, t.split
    FROM rollouts r
    JOIN chat_transcripts c USING (rollout_id)
    LEFT JOIN rollout_outcomes o USING (rollout_id)
    LEFT JOIN tasks t ON t.task_id = r.task_id
    WHERE r.parse_status = 'ok' AND len(c.prompt_messages) >= 1 AND (r.engine = 'gold' OR o.success)
),
repeated AS (
    SELECT *, unnest(range(CASE WHEN synthetic THEN getvariable('synthetic_upsample') ELSE 1 END)) AS upsample_index
    FROM picked
)
SELECT
    rollout_id || '#' || upsample_index AS example_id,
    task_id,
    role::VARCHAR AS role,
    messages,
    prompt,
    completion,
    source,
    synthetic,
    upsample_index::INTEGER AS upsample_index,
    split,
    policy_version,
    rollout_id,
    stage::VARCHAR AS stage,
    prompt_tokens,
    completion_tokens
FROM repeated
