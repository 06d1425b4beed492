-- One row per task (latest registration wins); gold_files are the files the gold patch touches;
-- test_files (what a test-file localization is measured against) the files its test patch touches,
-- or, for a task without a test patch (a synthesised bug that tests already in the repository
-- catch), the files of its FAIL_TO_PASS tests. `patch` is SWE-bench's name for the gold patch;
-- `gold_patch` repeats it for readers written before the rename.
SELECT
    t.instance_id AS task_id,
    t.repo,
    t.base_commit,
    t.problem_statement,
    t.patch,
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
    CASE WHEN len(diff_files(t.test_patch)) > 0 THEN diff_files(t.test_patch)
         ELSE list_sort(list_distinct(
             list_transform(coalesce(t.fail_to_pass, []), lambda n: split_part(n, '::', 1))))
    END AS test_files,
    t.contamination_flags,
    t.synthetic,
    t.stage,
    t.occurred_at AS registered_at
FROM raw_task_registered t
QUALIFY row_number() OVER (PARTITION BY t.instance_id ORDER BY t.occurred_at DESC, t.event_id) = 1
