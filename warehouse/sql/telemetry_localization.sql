-- Localization recall@k per stage, policy version and file_kind, for k = 1 .. max_localized_files:
--   source  a source-file localization (the BugFixer's files) against the gold patch's files;
--   test    a test-file localization (the TestWriter's file) against the test patch's files.
-- recall_at_k = mean share of those files found in the first k predicted files; all_found_at_k =
-- share of localizations that found all of them. Gold-method localizations are excluded, and so
-- are localizations whose task has no such files (nothing to find).
-- Summed from telemetry_localization_by_task (partial sums per task, rebuilt for the tasks new
-- events touch), so a refresh never re-reads every localization.
WITH summed AS (
    SELECT
        stage,
        policy_version,
        file_kind,
        k,
        sum(localizations)::BIGINT AS localizations,
        sum(recall_sum) AS recall_sum,
        sum(all_found)::BIGINT AS all_found
    FROM telemetry_localization_by_task
    GROUP BY ALL
)
SELECT
    s.stage,
    s.policy_version,
    v.version_index,
    s.file_kind,
    s.k,
    s.localizations,
    s.recall_sum / s.localizations AS recall_at_k,
    s.all_found / s.localizations AS all_found_at_k
FROM summed s
LEFT JOIN policy_versions v ON v.policy_version = s.policy_version
ORDER BY stage, version_index, policy_version, file_kind, k
