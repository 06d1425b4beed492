-- One RL prompt per task: the BugFixer prompt (as the latest greedy BugFixer rollout saw it, else
-- built from the issue and the localized files), the task's tests, and its difficulty bucket
-- from the measured success rate of the first policy version that attempted it.
WITH bugfix AS (
    SELECT r.task_id, r.rollout_id, v.version_index, r.sample_index, r.occurred_at, o.reward
    FROM rollouts r
    JOIN policy_versions v ON v.policy_version = r.policy_version
    LEFT JOIN rollout_outcomes o USING (rollout_id)
    WHERE r.role = 'bugfixer'
),
judged AS (
    SELECT *, min(version_index) OVER (PARTITION BY task_id) AS first_version
    FROM bugfix WHERE reward IS NOT NULL
),
baseline AS (
    SELECT task_id, avg(CASE WHEN reward >= 1.0 THEN 1.0 ELSE 0.0 END) AS rate, count(*) AS samples
    FROM judged WHERE version_index = first_version
    GROUP BY task_id
),
frozen AS (
    SELECT l.task_id, l.files[1:getvariable('max_localized_files')] AS files, l.method
    FROM localizations l
    LEFT JOIN policy_versions v USING (policy_version)
    QUALIFY row_number() OVER (
        PARTITION BY l.task_id
        ORDER BY l.method = 'frozen' DESC, coalesce(v.version_index, -1) DESC, coalesce(l.sample_index, 0),
                 l.occurred_at DESC) = 1
),
shown AS (
    SELECT b.task_id, c.prompt_messages, c.prompt
    FROM bugfix b JOIN chat_transcripts c USING (rollout_id)
    WHERE len(c.prompt_messages) > 0
    QUALIFY row_number() OVER (
        PARTITION BY b.task_id ORDER BY b.version_index DESC, b.sample_index, b.occurred_at DESC) = 1
),
assembled AS (
    SELECT
        t.*,
        coalesce(f.files, t.gold_files) AS localized_files,
        CASE WHEN f.files IS NOT NULL THEN f.method ELSE 'gold' END AS localized_from,
        coalesce(b.rate, t.declared_baseline_success_rate) AS baseline_success_rate,
        coalesce(b.samples, 0) AS baseline_samples,
        s.prompt AS shown_prompt,
        s.prompt_messages AS shown_messages
    FROM tasks t
    LEFT JOIN baseline b USING (task_id)
    LEFT JOIN frozen f USING (task_id)
    LEFT JOIN shown s USING (task_id)
),
prompted AS (
    SELECT *,
        coalesce(shown_prompt,
            'Fix the following issue in ' || repo || ' (commit ' || base_commit || ').' || chr(10) || chr(10)
            || '<issue>' || chr(10) || problem_statement || chr(10) || '</issue>' || chr(10) || chr(10)
            || 'Files to edit:' || chr(10) || array_to_string(localized_files, chr(10)) || chr(10) || chr(10)
            || 'Answer with SEARCH/REPLACE edits.') AS prompt_text
    FROM assembled
)
SELECT
    task_id,
    prompt_text AS prompt,
    coalesce(shown_messages, [{'role': 'user', 'content': prompt_text}]) AS messages,
    repo,
    base_commit,
    repo_dir,
    test_patch,
    fail_to_pass,
    pass_to_pass,
    localized_files,
    localized_from,
    baseline_success_rate,
    baseline_samples,
    coalesce(bucket_of(baseline_success_rate), declared_difficulty_bucket) AS difficulty_bucket,
    split,
    source,
    synthetic
FROM prompted
ORDER BY task_id
