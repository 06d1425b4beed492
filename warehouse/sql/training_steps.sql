-- One row per optimiser step of a training run.
SELECT
    s.envelope.run_id AS run_id,
    s.trainer,
    s.step,
    s.epoch,
    s.loss,
    s.reward_mean,
    s.reward_std,
    s.kl,
    s.learning_rate,
    s.grad_norm,
    s.tokens_per_s,
    s.samples,
    s.policy_version,
    s.checkpoint_path,
    s.metrics,
    s.stage,
    s.synthetic,
    s.occurred_at
FROM raw_training_step s
QUALIFY row_number() OVER (
    PARTITION BY s.envelope.run_id, s.trainer, s.step ORDER BY s.occurred_at DESC, s.event_id) = 1
