-- Each task's replay candidates: its best replay_top_k_per_task successful BugFixer trajectories of
-- the latest replay_window_versions policy versions (rank 1 = highest reward, newest version
-- first), keys only. A new event's task re-ranks its own trajectories alone (a slice), so that
-- replay_buffer orders and caps these few rows per task instead of re-reading every rollout. The
-- window moves only when policy_versions changes, and then every task is ranked again (a table
-- without partition that changed rebuilds the partitioned models reading it whole).
-- staleness = how many policy versions behind the latest one the trajectory is. Tasks the reward
-- cannot run on (rl_prompts_excluded) are left out: their groups could never be judged.
WITH latest AS (
    SELECT max(version_index) AS top FROM policy_versions
),
candidates AS (
    SELECT r.task_id, r.rollout_id, r.policy_version, o.reward, r.occurred_at, v.version_index
    FROM rollouts r
    JOIN rollout_outcomes o USING (rollout_id)
    JOIN policy_versions v ON v.policy_version = r.policy_version
    SEMI JOIN chat_transcripts c USING (rollout_id)
    ANTI JOIN rl_prompts_excluded x ON x.task_id = r.task_id
    WHERE r.role = 'bugfixer' AND o.success
      AND v.version_index > (SELECT top FROM latest) - getvariable('replay_window_versions')
),
ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY task_id ORDER BY reward DESC, version_index DESC, occurred_at DESC, rollout_id) AS rank
    FROM candidates
)
SELECT
    task_id,
    rollout_id,
    policy_version,
    reward,
    rank::INTEGER AS rank,
    ((SELECT top FROM latest) - version_index)::INTEGER AS staleness,
    occurred_at
FROM ranked
WHERE rank <= getvariable('replay_top_k_per_task')
