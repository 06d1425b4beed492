-- Promotion gates per stage and policy version: value against threshold (passed = at or above).
--   localization_accuracy  all_found_at_k at k = max_localized_files
--   patch_acceptance       apply_rate of proposed patches
--   fail_before_fix_rate   fail_before_rate of generated tests
WITH measured AS (
    SELECT 'localization_accuracy' AS gate, stage, policy_version, version_index, all_found_at_k AS value
    FROM telemetry_localization WHERE k = getvariable('max_localized_files')
    UNION ALL
    SELECT 'patch_acceptance', stage, policy_version, version_index, apply_rate FROM telemetry_patches
    UNION ALL
    SELECT 'fail_before_fix_rate', stage, policy_version, version_index, fail_before_rate FROM telemetry_tests
),
thresholds AS (
    SELECT * FROM (VALUES
        ('localization_accuracy', getvariable('gate_localization_accuracy')),
        ('patch_acceptance', getvariable('gate_patch_acceptance')),
        ('fail_before_fix_rate', getvariable('gate_fail_before_fix_rate'))
    ) AS t(gate, threshold)
)
SELECT
    m.gate,
    t.threshold::DOUBLE AS threshold,
    m.value::DOUBLE AS value,
    m.value >= t.threshold AS passed,
    m.policy_version,
    m.stage,
    m.version_index
FROM measured m
JOIN thresholds t USING (gate)
WHERE m.value IS NOT NULL
ORDER BY m.stage, m.version_index, m.policy_version, m.gate
