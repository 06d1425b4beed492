-- One row per rollout (a retried emit of the same rollout keeps the latest).
SELECT
    r.rollout_id,
    r.task_id,
    r.role,
    r.model,
    r.policy_version,
    r.engine,
    r.sample_index,
    r.temperature,
    r.prompt_tokens,
    r.completion_tokens,
    r.cached_prompt_tokens,
    r.num_turns,
    r.latency_ms,
    r.stop_reason,
    r.messages,
    r.reasoning,
    r.parse_status,
    r.retry_index,
    r.outcome,
    r.envelope.run_id AS run_id,
    r.envelope.attributes AS attributes,
    r.stage,
    r.synthetic,
    r.occurred_at
FROM raw_rollout r
-- the winning snapshot per rollout_id, ranked on narrow columns (sorting the wide rows costs more)
WHERE r.event_id IN (
    SELECT event_id FROM raw_rollout
    QUALIFY row_number() OVER (PARTITION BY rollout_id ORDER BY occurred_at DESC, event_id) = 1)
