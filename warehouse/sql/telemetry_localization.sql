-- Localization recall@k per stage and policy version: the share of the gold patch's files found
-- in the first k predicted files (recall_at_k), and the share of localizations that found all of
-- them (all_found_at_k), for k = 1 .. max_localized_files. Gold-method localizations are excluded.
SELECT
    l.stage::VARCHAR AS stage,
    l.policy_version,
    v.version_index,
    k.k::INTEGER AS k,
    count(*) AS localizations,
    avg(len(list_intersect(list_distinct(l.files[1:k.k]), l.gold_files)) / len(l.gold_files)) AS recall_at_k,
    avg(CASE WHEN list_has_all(l.files[1:k.k], l.gold_files) THEN 1.0 ELSE 0.0 END) AS all_found_at_k
FROM localizations l
CROSS JOIN (SELECT unnest(range(1, getvariable('max_localized_files') + 1)) AS k) k
LEFT JOIN policy_versions v USING (policy_version)
WHERE len(l.gold_files) > 0 AND l.method <> 'gold'
GROUP BY ALL
ORDER BY stage, version_index, policy_version, k
