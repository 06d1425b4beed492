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
-- The counts are summed from telemetry_patches_by_task (a partial aggregate per task, rebuilt for
-- the tasks new events touch), so a refresh never re-reads every rollout and proposal.
WITH summed AS (
    SELECT
        stage,
        policy_version,
        sum(samples)::BIGINT AS samples,
        sum(accepted)::BIGINT AS accepted,
        sum(parse_failures)::BIGINT AS parse_failures,
        sum(apply_failures)::BIGINT AS apply_failures,
        sum(empty)::BIGINT AS empty,
        sum(not_tried)::BIGINT AS not_tried,
        sum(proposals)::BIGINT AS proposals,
        sum(applied)::BIGINT AS applied,
        sum(judged)::BIGINT AS judged,
        sum(resolved)::BIGINT AS resolved
    FROM telemetry_patches_by_task
    GROUP BY ALL
)
SELECT
    s.stage,
    s.policy_version,
    v.version_index,
    s.samples,
    s.accepted,
    s.parse_failures,
    s.apply_failures,
    s.empty,
    s.not_tried,
    s.accepted / nullif(s.samples - s.not_tried, 0) AS acceptance,
    s.proposals,
    s.applied,
    s.applied / nullif(s.proposals, 0) AS apply_rate,
    s.judged,
    s.resolved,
    s.resolved / nullif(s.judged, 0) AS resolve_rate
FROM summed s
LEFT JOIN policy_versions v ON v.policy_version = s.policy_version
ORDER BY stage, version_index, policy_version
