-- Localization recall@k per stage, policy version and file_kind, for k = 1 .. max_localized_files:
--   source  a source-file localization (the BugFixer's files) against the gold patch's files;
--   test    a test-file localization (the TestWriter's file) against the test patch's files.
-- recall_at_k = mean share of those files found in the first k predicted files; all_found_at_k =
-- share of localizations that found all of them. Gold-method localizations are excluded, and so
-- are localizations whose task has no such files (nothing to find).
SELECT
    l.stage::VARCHAR AS stage,
    l.policy_version,
    v.version_index,
    l.file_kind,
    k.k::INTEGER AS k,
    count(*) AS localizations,
    avg(len(list_intersect(list_distinct(l.files[1:k.k]), l.gold_files)) / len(l.gold_files)) AS recall_at_k,
    avg(CASE WHEN list_has_all(l.files[1:k.k], l.gold_files) THEN 1.0 ELSE 0.0 END) AS all_found_at_k
FROM localizations l
CROSS JOIN (SELECT unnest(range(1, getvariable('max_localized_files') + 1)) AS k) k
LEFT JOIN policy_versions v USING (policy_version)
WHERE len(l.gold_files) > 0 AND l.method NOT IN ('gold', 'frozen')
GROUP BY ALL
ORDER BY stage, version_index, policy_version, file_kind, k
