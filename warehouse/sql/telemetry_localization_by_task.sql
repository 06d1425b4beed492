-- telemetry_localization's sums per task: the partial aggregate that a new event's task rebuilds
-- alone (a slice), so that telemetry_localization sums a few rows per task instead of re-reading
-- every localization. The definitions are telemetry_localization's (see there): recall_sum adds
-- each localization's share of its gold files found in its first k files, all_found counts those
-- that found them all.
SELECT
    l.task_id,
    l.stage::VARCHAR AS stage,
    l.policy_version,
    l.file_kind,
    k.k::INTEGER AS k,
    count(*) AS localizations,
    sum(len(list_intersect(list_distinct(l.files[1:k.k]), l.gold_files)) / len(l.gold_files)) AS recall_sum,
    count(*) FILTER (WHERE list_has_all(l.files[1:k.k], l.gold_files)) AS all_found
FROM localizations l
CROSS JOIN (SELECT unnest(range(1, getvariable('max_localized_files') + 1)) AS k) k
WHERE len(l.gold_files) > 0 AND l.method NOT IN ('gold', 'frozen')
GROUP BY ALL
