-- One row per entry × suite × metric: the newest skill evaluation of each arm of the recipe
-- (agentless | agentic | staged; an evaluation without an arm is its own entry, named by its
-- policy version), with n and a 95% Wilson interval (docs/EVALUATION.md).
WITH runs AS (
    SELECT
        coalesce(arm, policy_version) AS entry,
        arm,
        suite,
        mode,
        evaluation_run_id,
        policy_version,
        max(step) AS step,
        max(occurred_at) AS evaluated_at
    FROM skill_evaluations
    GROUP BY ALL
),
newest AS (
    SELECT *
    FROM runs
    QUALIFY row_number() OVER (
        PARTITION BY entry, suite, mode ORDER BY evaluated_at DESC, evaluation_run_id DESC) = 1
)
SELECT
    n.entry,
    n.arm,
    n.suite,
    n.mode,
    s.metric,
    n.policy_version,
    n.step,
    s.value,
    s.n,
    wilson_low(s.value, s.n) AS ci_low,
    wilson_high(s.value, s.n) AS ci_high,
    n.evaluation_run_id,
    n.evaluated_at
FROM newest n
JOIN skill_evaluations s USING (evaluation_run_id)
ORDER BY n.suite, s.metric, s.value DESC NULLS LAST, n.entry
