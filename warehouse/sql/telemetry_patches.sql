-- Patch acceptance per stage and policy version, counted per BugFixer sample (a rollout with role
-- 'bugfixer'; every retry is a sample of its own). Each sample is exactly one of:
--   accepted        its patch applied (patch_proposed apply_status applied | applied_with_fuzz)
--   apply_failures  its patch did not apply (apply_status failed)
--   empty           its output held no edit (parse_status empty_output, unterminated_reasoning,
--                   no_edit_blocks, engine_error, or GRPO's no_edit)
--   parse_failures  it wrote an edit that could not be turned into a patch (any other parse_status
--                   but ok: malformed block, unknown file, search text not found, no change, …)
--   not_tried       it parsed, but its patch was never applied (no sandbox run, infra failure)
-- acceptance = accepted / (samples - not_tried): unparseable, empty and non-applying samples count
-- against the policy; an untried one (the sandbox never ran it) is not judged, like an infra failure.
-- Per proposal (every patch_proposed of any role, synthesis included): apply_rate = applied /
-- proposals; resolve_rate = resolved / proposals that were judged.
WITH patch_of AS (
    SELECT rollout_id, apply_status IN ('applied', 'applied_with_fuzz') AS applied, apply_status
    FROM raw_patch_proposed
    WHERE rollout_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY rollout_id ORDER BY occurred_at DESC, event_id) = 1
),
samples AS (
    SELECT
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
    SELECT p.patch_id, p.stage::VARCHAR AS stage, r.policy_version,
           p.apply_status IN ('applied', 'applied_with_fuzz') AS applied
    FROM raw_patch_proposed p
    LEFT JOIN rollouts r ON r.rollout_id = p.rollout_id
),
judged AS (
    SELECT subject_id AS patch_id, bool_or(outcome = 'resolved') AS resolved
    FROM rewards WHERE subject_kind = 'patch' AND outcome NOT IN ('infra_failure', 'flaky')
    GROUP BY subject_id
),
by_proposal AS (
    SELECT
        pr.stage,
        pr.policy_version,
        count(*) AS proposals,
        count(*) FILTER (WHERE pr.applied) AS applied,
        avg(CASE WHEN pr.applied THEN 1.0 ELSE 0.0 END) AS apply_rate,
        count(j.patch_id) AS judged,
        count(*) FILTER (WHERE j.resolved) AS resolved,
        (count(*) FILTER (WHERE j.resolved)) / nullif(count(j.patch_id), 0) AS resolve_rate
    FROM proposals pr
    LEFT JOIN judged j USING (patch_id)
    GROUP BY ALL
)
SELECT
    coalesce(s.stage, p.stage) AS stage,
    coalesce(s.policy_version, p.policy_version) AS policy_version,
    v.version_index,
    coalesce(s.samples, 0) AS samples,
    coalesce(s.accepted, 0) AS accepted,
    coalesce(s.parse_failures, 0) AS parse_failures,
    coalesce(s.apply_failures, 0) AS apply_failures,
    coalesce(s.empty, 0) AS empty,
    coalesce(s.not_tried, 0) AS not_tried,
    s.accepted / nullif(s.samples - s.not_tried, 0) AS acceptance,
    coalesce(p.proposals, 0) AS proposals,
    coalesce(p.applied, 0) AS applied,
    p.apply_rate,
    coalesce(p.judged, 0) AS judged,
    coalesce(p.resolved, 0) AS resolved,
    p.resolve_rate
FROM by_sample s
FULL OUTER JOIN by_proposal p
    ON p.stage IS NOT DISTINCT FROM s.stage AND p.policy_version IS NOT DISTINCT FROM s.policy_version
LEFT JOIN policy_versions v ON v.policy_version = coalesce(s.policy_version, p.policy_version)
ORDER BY stage, version_index, policy_version
