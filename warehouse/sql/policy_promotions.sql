-- One row per promotion decision (promoted | rejected | forced), oldest first per policy version;
-- `current` marks each version's latest promoted/rejected verdict, the one training starts from.
SELECT
    p.promotion_id,
    p.policy_version,
    p.decision,
    p.passed,
    p.reason,
    p.forced_by,
    p.gates,
    p.envelope.run_id AS run_id,
    p.decision <> 'forced' AND row_number() OVER (
        PARTITION BY p.policy_version, p.decision = 'forced' ORDER BY p.occurred_at DESC, p.event_id DESC
    ) = 1 AS current,
    p.stage,
    p.synthetic,
    p.occurred_at
FROM raw_policy_promoted p
QUALIFY row_number() OVER (PARTITION BY p.promotion_id ORDER BY p.occurred_at DESC, p.event_id) = 1
ORDER BY p.policy_version, p.occurred_at
