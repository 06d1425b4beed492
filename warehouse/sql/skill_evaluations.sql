-- One row per metric of a skill evaluation: a policy checkpoint measured on a held-out suite
-- (trainers/skill_eval.py, `vtforge evaluate`; docs/EVALUATION.md). metric is one of the recipe
-- metrics of docs/SELFPLAY.md (localization_accuracy, patch_acceptance, fail_before_fix_task_rate,
-- resolve_rate) computed by the telemetry models over that evaluation's own events; value is NULL
-- when there was nothing to measure it on, and n is its denominator. A re-emitted metric keeps the
-- latest event.
SELECT
    s.evaluation_run_id,
    s.policy_version,
    s.arm,
    s.suite,
    s.mode,
    s.step,
    s.epoch,
    s.metric,
    s.value,
    s.n,
    s.envelope.run_id AS run_id,
    s.stage,
    s.synthetic,
    s.occurred_at
FROM raw_skill_evaluation s
QUALIFY row_number() OVER (
    PARTITION BY s.evaluation_run_id, s.metric ORDER BY s.occurred_at DESC, s.event_id) = 1
ORDER BY s.policy_version, s.suite, s.step, s.evaluation_run_id, s.metric
