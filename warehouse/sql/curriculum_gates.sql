-- Promotion gates per stage and policy version: value against threshold, compared as the gate says.
--   localization_accuracy  all_found_at_k of source-file localizations (the BugFixer's files against
--                          the gold patch's files) at k = max_localized_files; passes at >= threshold
--   patch_acceptance       acceptance: accepted patches / judged BugFixer samples (unparseable, empty
--                          and non-applying samples included); passes at >= threshold
--   fail_before_fix_rate   fail_before_fix_task_rate: sampled tasks with a generated test that fails
--                          before the fix and passes after it / tasks with a TestWriter sample; the
--                          recipe asks for more than the threshold (> 80%), so it passes at > threshold
-- A skill evaluation on a held-out suite (skill_evaluations, docs/EVALUATION.md) measures the same
-- three metrics for a policy: its newest evaluation per suite is a stage of its own, 'eval:<suite>',
-- so `vtforge gates --promote` can promote an SFT policy on held-out evidence.
-- The gates' comparisons are the `gates` rows; trainers/gates.py reads them from the `comparison`
-- column when it re-applies thresholds from the config (its COMPARISONS mirror them for tables
-- built before the column existed; tests/warehouse/test_recipe_metrics.py checks both agree).
WITH measured AS (
    SELECT 'localization_accuracy' AS gate, stage, policy_version, version_index, all_found_at_k AS value
    FROM telemetry_localization WHERE k = getvariable('max_localized_files') AND file_kind = 'source'
    UNION ALL
    SELECT 'patch_acceptance', stage, policy_version, version_index, acceptance FROM telemetry_patches
    UNION ALL
    SELECT 'fail_before_fix_rate', stage, policy_version, version_index, fail_before_fix_task_rate
    FROM telemetry_tests
    UNION ALL
    SELECT
        CASE e.metric WHEN 'fail_before_fix_task_rate' THEN 'fail_before_fix_rate' ELSE e.metric END,
        'eval:' || e.suite,
        e.policy_version,
        v.version_index,
        e.value
    FROM skill_evaluations e
    LEFT JOIN policy_versions v USING (policy_version)
    WHERE e.mode = 'agentless'
      AND e.metric IN ('localization_accuracy', 'patch_acceptance', 'fail_before_fix_task_rate')
    QUALIFY e.evaluation_run_id = first(e.evaluation_run_id) OVER (
        PARTITION BY e.policy_version, e.suite ORDER BY e.occurred_at DESC, e.evaluation_run_id DESC)
),
gates AS (
    SELECT * FROM (VALUES
        ('localization_accuracy', getvariable('gate_localization_accuracy'), '>='),
        ('patch_acceptance', getvariable('gate_patch_acceptance'), '>='),
        ('fail_before_fix_rate', getvariable('gate_fail_before_fix_rate'), '>')
    ) AS g(gate, threshold, comparison)
)
SELECT
    m.gate,
    g.threshold::DOUBLE AS threshold,
    m.value::DOUBLE AS value,
    CASE g.comparison
        WHEN '>' THEN m.value::DOUBLE > g.threshold::DOUBLE
        ELSE m.value::DOUBLE >= g.threshold::DOUBLE
    END AS passed,
    m.policy_version,
    m.stage,
    m.version_index,
    g.comparison
FROM measured m
JOIN gates g USING (gate)
WHERE m.value IS NOT NULL
ORDER BY m.stage, m.version_index, m.policy_version, m.gate
