-- Tasks left out of rl_prompts (and of replay_buffer) because the execution-outcome reward cannot run
-- on them, with the first reason found, in this order:
--   no_repo_dir      no local repository to apply a patch in (repo_dir NULL or empty)
--   no_base_commit   no commit to check out
--   no_fail_to_pass  no FAIL_TO_PASS test: nothing tells a fix from no fix (an empty test list
--                    would grade every applied patch as resolved)
WITH checked AS (
    SELECT
        task_id,
        split,
        source,
        synthetic,
        CASE
            WHEN repo_dir IS NULL OR trim(repo_dir) = '' THEN 'no_repo_dir'
            WHEN base_commit IS NULL OR trim(base_commit) = '' THEN 'no_base_commit'
            WHEN len(coalesce(fail_to_pass, [])) = 0 THEN 'no_fail_to_pass'
        END AS reason
    FROM tasks
)
SELECT task_id, reason, split, source, synthetic
FROM checked
WHERE reason IS NOT NULL
