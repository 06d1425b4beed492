-- Successful BugFixer trajectories of the latest replay_window_versions policy versions: the best
-- replay_top_k_per_task per task (newest version first), at most replay_max_rows rows.
-- staleness = how many policy versions behind the latest one the trajectory is. Tasks the reward
-- cannot run on (rl_prompts_excluded) are left out: their groups could never be judged.
-- The ranking per task is replay_candidates' (rebuilt for the tasks new events touch); this orders
-- and caps those rows, and reads the chats of the kept ones only.
WITH kept AS (
    SELECT * FROM replay_candidates
    ORDER BY staleness, rank, occurred_at DESC, rollout_id
    LIMIT getvariable('replay_max_rows')
)
SELECT
    k.task_id,
    k.rollout_id,
    k.policy_version,
    c.prompt,
    c.completion,
    list_append(c.prompt_messages, {'role': 'assistant', 'content': c.completion}) AS messages,
    k.reward,
    k.rank,
    k.staleness,
    timezone('UTC', k.occurred_at) AS occurred_at  -- TIMESTAMP in UTC (the contract's type)
FROM kept k
JOIN chat_transcripts c USING (rollout_id)
ORDER BY k.staleness, k.rank, k.occurred_at DESC, k.rollout_id
