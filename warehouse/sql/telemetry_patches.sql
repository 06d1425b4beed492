-- Patch acceptance per stage and policy version, counted per proposal (a rollout's patch):
-- apply_rate = applied / proposals; resolve_rate = resolved / proposals that were judged.
WITH proposals AS (
    SELECT p.patch_id, p.stage, r.policy_version,
           p.apply_status IN ('applied', 'applied_with_fuzz') AS applied
    FROM raw_patch_proposed p
    LEFT JOIN rollouts r ON r.rollout_id = p.rollout_id
),
judged AS (
    SELECT subject_id AS patch_id, bool_or(outcome = 'resolved') AS resolved
    FROM rewards WHERE subject_kind = 'patch' AND outcome <> 'infra_failure'
    GROUP BY subject_id
)
SELECT
    pr.stage::VARCHAR AS stage,
    pr.policy_version,
    v.version_index,
    count(*) AS proposals,
    count(*) FILTER (WHERE pr.applied) AS applied,
    avg(CASE WHEN pr.applied THEN 1.0 ELSE 0.0 END) AS apply_rate,
    count(j.patch_id) AS judged,
    count(*) FILTER (WHERE j.resolved) AS resolved,
    (count(*) FILTER (WHERE j.resolved)) / nullif(count(j.patch_id), 0) AS resolve_rate
FROM proposals pr
LEFT JOIN judged j USING (patch_id)
LEFT JOIN policy_versions v USING (policy_version)
GROUP BY ALL
ORDER BY stage, version_index, policy_version
