-- telemetry_patches' counts per task: the partial aggregate that a new event's task rebuilds alone
-- (a slice), so that telemetry_patches sums a few rows per task instead of re-reading every
-- rollout and proposal. The definitions of the counts are telemetry_patches' (see there); a
-- patch is judged by the rewards of its own task.
WITH patch_of AS (
    SELECT rollout_id, apply_status IN ('applied', 'applied_with_fuzz') AS applied, apply_status
    FROM raw_patch_proposed
    WHERE rollout_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY rollout_id ORDER BY occurred_at DESC, event_id) = 1
),
samples AS (
    SELECT
        r.task_id,
        r.stage::VARCHAR AS stage,
        r.policy_version,
        CASE
            WHEN r.parse_status IN (
                'empty_output', 'unterminated_reasoning', 'no_edit_blocks', 'engine_error', 'no_edit'
            ) THEN 'empty'
            WHEN r.parse_status <> 'ok' THEN 'parse_failure'
            WHEN p.applied THEN 'accepted'
            WHEN p.apply_status = 'failed' THEN 'apply_failure'
            ELSE 'not_tried'
        END AS fate
    FROM rollouts r
    LEFT JOIN patch_of p USING (rollout_id)
    WHERE r.role = 'bugfixer'
),
by_sample AS (
    SELECT
        task_id,
        stage,
        policy_version,
        count(*) AS samples,
        count(*) FILTER (WHERE fate = 'accepted') AS accepted,
        count(*) FILTER (WHERE fate = 'parse_failure') AS parse_failures,
        count(*) FILTER (WHERE fate = 'apply_failure') AS apply_failures,
        count(*) FILTER (WHERE fate = 'empty') AS empty,
        count(*) FILTER (WHERE fate = 'not_tried') AS not_tried
    FROM samples
    GROUP BY ALL
),
proposals AS (
    SELECT coalesce(p.task_id, r.task_id) AS task_id, p.patch_id, p.stage::VARCHAR AS stage,
           r.policy_version, p.apply_status IN ('applied', 'applied_with_fuzz') AS applied
    FROM raw_patch_proposed p
    LEFT JOIN rollouts r ON r.rollout_id = p.rollout_id
),
judged AS (
    SELECT task_id, subject_id AS patch_id, bool_or(outcome = 'resolved') AS resolved
    FROM rewards WHERE subject_kind = 'patch' AND outcome NOT IN ('infra_failure', 'flaky')
    GROUP BY ALL
),
by_proposal AS (
    SELECT
        pr.task_id,
        pr.stage,
        pr.policy_version,
        count(*) AS proposals,
        count(*) FILTER (WHERE pr.applied) AS applied,
        count(j.patch_id) AS judged,
        count(*) FILTER (WHERE j.resolved) AS resolved
    FROM proposals pr
    LEFT JOIN judged j ON j.task_id IS NOT DISTINCT FROM pr.task_id AND j.patch_id = pr.patch_id
    GROUP BY ALL
)
SELECT
    coalesce(s.task_id, p.task_id) AS task_id,
    coalesce(s.stage, p.stage) AS stage,
    coalesce(s.policy_version, p.policy_version) AS policy_version,
    coalesce(s.samples, 0) AS samples,
    coalesce(s.accepted, 0) AS accepted,
    coalesce(s.parse_failures, 0) AS parse_failures,
    coalesce(s.apply_failures, 0) AS apply_failures,
    coalesce(s.empty, 0) AS empty,
    coalesce(s.not_tried, 0) AS not_tried,
    coalesce(p.proposals, 0) AS proposals,
    coalesce(p.applied, 0) AS applied,
    coalesce(p.judged, 0) AS judged,
    coalesce(p.resolved, 0) AS resolved
FROM by_sample s
FULL OUTER JOIN by_proposal p
    ON p.task_id IS NOT DISTINCT FROM s.task_id AND p.stage IS NOT DISTINCT FROM s.stage
    AND p.policy_version IS NOT DISTINCT FROM s.policy_version
