-- One RL prompt per task the execution-outcome reward can run on (rl_prompts_excluded lists the
-- others, with why): the BugFixer prompt, the task's tests, the localization it is built on and the
-- task's difficulty bucket.
--
-- baseline_success_rate = the resolved share of the judged BugFixer samples (one outcome per sample:
-- its last attempt; infra failures are not judged) that measured it, from
-- (first match wins): the samples of the latest `vtforge tasks baseline` run (attribute purpose =
-- baseline; a run on real completions before one on synthetic recorded ones) ('baseline'); else the
-- judged BugFixer rollouts of the first policy version that attempted the task ('rollouts'); else
-- the task bank's declared rate ('declared').
-- difficulty_bucket = bucket_of(baseline_success_rate): 'unmeasured' when there is none.
--
-- Localization: a 'frozen' localization of the policy named by forge.train.frozen_localization_policy
-- (emitted before RL) wins, the latest one emitted first; else the newest policy's own ('model');
-- else the gold files. Frozen copies of other policies are ignored, so a freeze never leaks into a
-- later run that names no frozen policy.
-- localization_policy = the policy version whose localization it is (NULL for gold files).
-- The prompt is the one a BugFixer rollout saw (for a frozen localization: a BugFixer rollout of
-- the run that produced those files, so the prompt shows exactly them), else built from the issue
-- and the localized files.
WITH bugfix AS (
    SELECT r.task_id, r.rollout_id, r.run_id, r.policy_version, r.synthetic,
           coalesce(r.stage = 'eval' AND r.attributes['purpose'] = 'baseline', false) AS measured,
           v.version_index, r.sample_index, r.occurred_at, o.reward
    FROM rollouts r
    JOIN policy_versions v ON v.policy_version = r.policy_version
    LEFT JOIN rollout_outcomes o USING (rollout_id)
    WHERE r.role = 'bugfixer'
    -- one outcome per sample: a sample's last attempt (its earlier attempts did not parse)
    QUALIFY coalesce(r.retry_index, 0) = max(coalesce(r.retry_index, 0)) OVER (
        PARTITION BY r.run_id, r.policy_version, r.task_id, r.sample_index)
),
judged AS (
    SELECT * FROM bugfix WHERE reward IS NOT NULL
),
-- one measurement per (task, run) for baseline runs, per (task, policy version) for other rollouts
measurements AS (
    SELECT task_id,
           measured,
           CASE WHEN measured THEN run_id ELSE policy_version END AS unit,
           avg(CASE WHEN reward >= 1.0 THEN 1.0 ELSE 0.0 END) AS rate,
           count(*) AS samples,
           any_value(policy_version) AS policy,
           bool_and(synthetic) AS synthetic,
           min(version_index) AS version_index,
           max(occurred_at) AS measured_at
    FROM judged
    GROUP BY task_id, measured, unit
),
baseline AS (
    SELECT task_id, rate, samples, policy,
           CASE WHEN measured THEN 'baseline' ELSE 'rollouts' END AS source
    FROM measurements
    QUALIFY row_number() OVER (
        PARTITION BY task_id
        ORDER BY measured DESC,
                 CASE WHEN measured THEN synthetic END NULLS LAST,   -- baselines: real before synthetic
                 CASE WHEN measured THEN measured_at END DESC NULLS LAST,  -- ... then the latest
                 version_index, unit) = 1                             -- rollouts: the first version
),
frozen_attributes AS (
    SELECT rollout_id, envelope.attributes AS attributes
    FROM raw_localization_predicted
    WHERE method = 'frozen'
      AND envelope.attributes['policy_version'] = getvariable('frozen_localization_policy')
    QUALIFY row_number() OVER (PARTITION BY rollout_id ORDER BY occurred_at DESC, event_id) = 1
),
frozen AS (
    SELECT l.task_id, l.files[1:getvariable('max_localized_files')] AS files, l.method,
           CASE l.method WHEN 'frozen' THEN a.attributes['policy_version']
                         WHEN 'model' THEN l.policy_version END AS policy,
           a.attributes['source_rollout_id'] AS source_rollout_id
    FROM localizations l
    LEFT JOIN policy_versions v USING (policy_version)
    LEFT JOIN frozen_attributes a USING (rollout_id)
    WHERE l.file_kind = 'source'  -- the BugFixer's files, not a TestWriter's test file
      AND (l.method <> 'frozen' OR a.rollout_id IS NOT NULL)  -- only the named frozen policy's
    QUALIFY row_number() OVER (
        PARTITION BY l.task_id
        ORDER BY l.method = 'frozen' DESC, coalesce(v.version_index, -1) DESC, coalesce(l.sample_index, 0),
                 l.occurred_at DESC) = 1
),
seen AS (
    SELECT b.task_id, b.run_id, b.version_index, b.sample_index, b.occurred_at, c.prompt_messages, c.prompt
    FROM bugfix b JOIN chat_transcripts c USING (rollout_id)
    WHERE len(c.prompt_messages) > 0
),
shown AS (
    SELECT task_id, prompt_messages, prompt FROM seen
    QUALIFY row_number() OVER (
        PARTITION BY task_id ORDER BY version_index DESC, sample_index, occurred_at DESC) = 1
),
frozen_shown AS (
    SELECT f.task_id, s.prompt_messages, s.prompt
    FROM frozen f
    JOIN rollouts src ON src.rollout_id = f.source_rollout_id
    JOIN seen s ON s.task_id = f.task_id AND s.run_id = src.run_id
    WHERE f.method = 'frozen'
    QUALIFY row_number() OVER (PARTITION BY f.task_id ORDER BY s.sample_index, s.occurred_at DESC) = 1
),
assembled AS (
    SELECT
        t.*,
        coalesce(f.files, t.gold_files) AS localized_files,
        CASE WHEN f.files IS NOT NULL THEN f.method ELSE 'gold' END AS localized_from,
        CASE WHEN f.files IS NOT NULL THEN f.policy END AS localization_policy,
        coalesce(b.rate, t.declared_baseline_success_rate) AS baseline_success_rate,
        coalesce(b.samples, 0) AS baseline_samples,
        CASE WHEN b.rate IS NOT NULL THEN b.source
             WHEN t.declared_baseline_success_rate IS NOT NULL THEN 'declared' END AS baseline_source,
        b.policy AS baseline_policy,
        CASE WHEN f.method = 'frozen' THEN fs.prompt ELSE s.prompt END AS shown_prompt,
        CASE WHEN f.method = 'frozen' THEN fs.prompt_messages ELSE s.prompt_messages END AS shown_messages
    FROM tasks t
    LEFT JOIN baseline b USING (task_id)
    LEFT JOIN frozen f USING (task_id)
    LEFT JOIN shown s USING (task_id)
    LEFT JOIN frozen_shown fs USING (task_id)
    ANTI JOIN rl_prompts_excluded x USING (task_id)
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
    coalesce(shown_messages, [{'role': 'user', 'content': prompt_text}]) AS prompt,
    prompt_text,
    repo,
    base_commit,
    repo_dir,
    test_patch,
    fail_to_pass,
    pass_to_pass,
    localized_files,
    localized_from,
    localization_policy,
    baseline_success_rate,
    baseline_samples,
    baseline_source,
    baseline_policy,
    bucket_of(baseline_success_rate) AS difficulty_bucket,
    split,
    source,
    synthetic
FROM prompted
