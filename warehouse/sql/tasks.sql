-- One row per task (latest registration wins); gold_files are the files the gold patch touches.
SELECT
    t.instance_id AS task_id,
    t.repo,
    t.base_commit,
    t.problem_statement,
    t.patch AS gold_patch,
    t.test_patch,
    t.repo_dir,
    t.fail_to_pass,
    t.pass_to_pass,
    t.hints_text,
    t.version,
    t.source,
    t.split,
    t.provenance.dataset_slice AS dataset_slice,
    t.provenance.origin AS origin,
    t.provenance.license AS license,
    t.difficulty_bucket AS declared_difficulty_bucket,
    t.baseline_success_rate AS declared_baseline_success_rate,
    diff_files(t.patch) AS gold_files,
    t.contamination_flags,
    t.synthetic,
    t.stage,
    t.occurred_at AS registered_at
FROM raw_task_registered t
QUALIFY row_number() OVER (PARTITION BY t.instance_id ORDER BY t.occurred_at DESC, t.event_id) = 1
